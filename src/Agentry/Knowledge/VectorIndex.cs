namespace Agentry.Knowledge;

/// <summary>
/// Where a collection's vectors live and are searched. Texts and metadata stay in the database; a provider holds each
/// chunk's vector under its key with the document it belongs to, so it can delete a document's vectors and filter by
/// document. Every provider scores by cosine similarity (higher is closer) and passes the same contract tests.
/// </summary>
public interface IVectorIndex
{
    /// <summary>Adds the vectors, replacing any already held under the same keys (a repeated step adds nothing twice).</summary>
    Task UpsertAsync(VectorCollection collection, IReadOnlyList<VectorRecord> records, CancellationToken ct);

    /// <summary>Removes every vector of the document.</summary>
    Task DeleteDocumentAsync(VectorCollection collection, Guid documentId, CancellationToken ct);

    /// <summary>The <paramref name="topK"/> nearest vectors, closest first, restricted to <paramref name="documentIds"/> when given.</summary>
    Task<IReadOnlyList<VectorMatch>> QueryAsync(
        VectorCollection collection, float[] vector, int topK, IReadOnlyCollection<Guid>? documentIds, CancellationToken ct);

    /// <summary>Removes the collection's vectors and whatever holds them.</summary>
    Task DropAsync(VectorCollection collection, CancellationToken ct);
}

/// <summary>A collection as a vector provider needs to know it.</summary>
public sealed record VectorCollection(Guid Id, int Dimensions);

public sealed record VectorRecord(long Key, Guid DocumentId, float[] Vector);

/// <summary>A match: the vector's key and its cosine similarity to the query.</summary>
public sealed record VectorMatch(long Key, double Score);

/// <summary>
/// The vector provider of a collection: each provider is registered as a keyed <see cref="IVectorIndex"/> under its name
/// (<see cref="VectorProviders"/>), so adding one is a registration and a name, nothing here.
/// </summary>
internal sealed class VectorIndexes(IServiceProvider services)
{
    public IVectorIndex For(KnowledgeCollection collection) => services.GetRequiredKeyedService<IVectorIndex>(collection.VectorProvider);

    public static VectorCollection Of(KnowledgeCollection collection) => new(collection.Id, collection.Dimensions);
}
