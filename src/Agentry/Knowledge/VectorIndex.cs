extern alias PollyCore;
using PollyCore::Polly;
using PollyCore::Polly.Retry;

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
public sealed record VectorCollection(Guid Id, int Dimensions)
{
    /// <summary>The name a vector server gives the collection: a prefix and the id's 32 hex digits (valid in ChromaDB and Qdrant).</summary>
    public string ServerName => $"agentry-{Id:N}";

    /// <summary>Refuses, before anything is written, a vector whose length is not the collection's: every provider does.</summary>
    public void CheckDimensions(IReadOnlyList<VectorRecord> records)
    {
        foreach (var record in records)
        {
            CheckDimensions(record.Vector);
        }
    }

    public void CheckDimensions(float[] vector)
    {
        if (vector.Length != Dimensions)
        {
            throw new ArgumentException($"A vector has {vector.Length} dimensions; the collection's have {Dimensions}.", nameof(vector));
        }
    }
}

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

/// <summary>What the server providers share: a call that fails for want of a server is tried twice more, briefly.</summary>
internal static class VectorServers
{
    public static ResiliencePipeline Retry(string provider, ILogger logger, Func<Exception, CancellationToken, bool> serverDown) =>
        new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = 2,
            Delay = TimeSpan.FromMilliseconds(200),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && serverDown(ex, args.Context.CancellationToken)),
            OnRetry = args =>
            {
                KnowledgeLog.VectorServerRetry(logger, provider, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message ?? "");
                return ValueTask.CompletedTask;
            },
        }).Build();
}
