using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// What every vector provider does, run against each: the embedded USearch index, a real ChromaDB server, and Qdrant's
/// client over a wire-level stand-in. Each test uses a collection of its own, so the suite can share one server.
/// </summary>
public abstract class VectorIndexContract
{
    private const int Dims = 8;

    private readonly Random _random = new(11);

    /// <summary>The provider under test, resolved from the app's own registrations.</summary>
    protected abstract IVectorIndex Index { get; }

    [Fact]
    public async Task Upserted_vectors_come_back_nearest_first_with_their_cosine_similarity()
    {
        var collection = Collection();
        var document = Guid.CreateVersion7();
        var vectors = Enumerable.Range(1, 20).ToDictionary(k => (long)k, _ => Vector());
        await Index.UpsertAsync(collection, vectors.Select(v => new VectorRecord(v.Key, document, v.Value)).ToList(), default);
        var probe = Vector();

        var matches = await Index.QueryAsync(collection, probe, 5, null, default);

        var expected = vectors.Select(v => (v.Key, Score: Cosine(probe, v.Value))).OrderByDescending(v => v.Score).Take(5).ToList();
        Assert.Equal(expected.Select(e => e.Key), matches.Select(m => m.Key));
        Assert.All(matches.Zip(expected), p => Assert.Equal(p.Second.Score, p.First.Score, 4));
        // A vector scores 1 against itself, whatever its length.
        var self = await Index.QueryAsync(collection, vectors[7].Select(x => x * 3).ToArray(), 1, null, default);
        Assert.Equal(7, Assert.Single(self).Key);
        Assert.Equal(1.0, self[0].Score, 4);
    }

    [Fact]
    public async Task Upserting_a_key_again_replaces_its_vector_and_document()
    {
        var collection = Collection();
        var (first, second) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        var old = Vector();
        await Index.UpsertAsync(collection, [new(1, first, old), new(2, first, Vector())], default);
        var replacement = Vector();
        await Index.UpsertAsync(collection, [new(1, second, replacement)], default);
        await Index.UpsertAsync(collection, [new(1, second, replacement)], default); // a repeated step adds nothing

        var all = await Index.QueryAsync(collection, replacement, 100, null, default);
        Assert.Equal([1L, 2L], all.Select(m => m.Key).Order());
        Assert.Equal(1, all[0].Key);
        Assert.Equal(1.0, all[0].Score, 4);
        Assert.Equal([1L], (await Index.QueryAsync(collection, old, 10, [second], default)).Select(m => m.Key));
        Assert.Equal([2L], (await Index.QueryAsync(collection, old, 10, [first], default)).Select(m => m.Key));
    }

    [Fact]
    public async Task A_document_filter_keeps_only_those_documents_even_when_others_are_nearer()
    {
        var collection = Collection();
        var documents = Enumerable.Range(0, 4).Select(_ => Guid.CreateVersion7()).ToList();
        var records = documents.SelectMany((d, i) => Enumerable.Range(0, 10).Select(j => new VectorRecord(i * 100 + j + 1, d, Vector()))).ToList();
        await Index.UpsertAsync(collection, records, default);
        var probe = Vector();

        var matches = await Index.QueryAsync(collection, probe, 6, [documents[1], documents[3]], default);

        var expected = records.Where(r => r.DocumentId == documents[1] || r.DocumentId == documents[3])
            .OrderByDescending(r => Cosine(probe, r.Vector)).Take(6).Select(r => r.Key);
        Assert.Equal(expected, matches.Select(m => m.Key));
        Assert.Empty(await Index.QueryAsync(collection, probe, 6, [Guid.CreateVersion7()], default));
        Assert.Empty(await Index.QueryAsync(collection, probe, 6, [], default));
    }

    [Fact]
    public async Task Deleting_a_document_removes_its_vectors_and_only_those()
    {
        var collection = Collection();
        var (kept, deleted) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        await Index.UpsertAsync(collection, Enumerable.Range(1, 10).Select(k => new VectorRecord(k, k % 2 == 0 ? deleted : kept, Vector())).ToList(), default);

        await Index.DeleteDocumentAsync(collection, deleted, default);
        await Index.DeleteDocumentAsync(collection, deleted, default); // again: nothing left to remove

        var all = await Index.QueryAsync(collection, Vector(), 100, null, default);
        Assert.Equal([1L, 3, 5, 7, 9], all.Select(m => m.Key).Order());
        Assert.Empty(await Index.QueryAsync(collection, Vector(), 100, [deleted], default));
    }

    [Fact]
    public async Task Dropping_removes_the_vectors_and_the_collection_starts_anew_even_with_another_length()
    {
        var collection = Collection();
        await Index.UpsertAsync(collection, [new(1, Guid.CreateVersion7(), Vector())], default);
        var other = Collection();
        await Index.UpsertAsync(other, [new(1, Guid.CreateVersion7(), Vector())], default);

        await Index.DropAsync(collection, default);
        await Index.DropAsync(collection, default); // dropped already: fine

        Assert.Empty(await Index.QueryAsync(collection, Vector(), 10, null, default));
        Assert.Single(await Index.QueryAsync(other, Vector(), 10, null, default));
        // A model change drops the vectors and re-ingests with the new model's length.
        var shorter = collection with { Dimensions = 4 };
        await Index.UpsertAsync(shorter, [new(5, Guid.CreateVersion7(), [1, 0, 0, 0]), new(6, Guid.CreateVersion7(), [0, 1, 0, 0])], default);
        var matches = await Index.QueryAsync(shorter, [1, 0.1f, 0, 0], 10, null, default);
        Assert.Equal([5L, 6L], matches.Select(m => m.Key));
    }

    [Fact]
    public async Task A_collection_never_written_to_answers_empty()
    {
        var collection = Collection();
        Assert.Empty(await Index.QueryAsync(collection, Vector(), 10, null, default));
        Assert.Empty(await Index.QueryAsync(collection, Vector(), 10, [Guid.CreateVersion7()], default));
        await Index.DeleteDocumentAsync(collection, Guid.CreateVersion7(), default);
        await Index.UpsertAsync(collection, [], default);
        await Index.DropAsync(collection, default);
        Assert.Empty(await Index.QueryAsync(collection, Vector(), 10, null, default));
    }

    [Fact]
    public async Task A_vector_of_another_length_is_refused_and_nothing_of_its_batch_is_stored()
    {
        var collection = Collection();
        var document = Guid.CreateVersion7();
        await Index.UpsertAsync(collection, [new(1, document, Vector())], default);

        await Assert.ThrowsAsync<ArgumentException>(() => Index.UpsertAsync(collection, [new(2, document, Vector()), new(3, document, new float[Dims + 1])], default));
        await Assert.ThrowsAsync<ArgumentException>(() => Index.QueryAsync(collection, new float[Dims - 1], 5, null, default));

        Assert.Equal([1L], (await Index.QueryAsync(collection, Vector(), 10, null, default)).Select(m => m.Key));
    }

    [Fact]
    public async Task Concurrent_upserts_and_queries_all_land()
    {
        var collection = Collection();
        var documents = Enumerable.Range(0, 6).Select(_ => Guid.CreateVersion7()).ToList();
        var batches = documents.Select((d, i) => Enumerable.Range(0, 40).Select(j => new VectorRecord(i * 1_000 + j + 1, d, Vector())).ToList()).ToList();
        var probe = Vector();

        var queries = Enumerable.Range(0, 6).Select(_ => Task.Run(() => Index.QueryAsync(collection, probe, 10, null, default))).ToList();
        await Task.WhenAll(batches.Select(b => Task.Run(() => Index.UpsertAsync(collection, b, default))).Concat<Task>(queries));
        Assert.All(queries, q => Assert.True(q.Result.Count <= 10));

        Assert.Equal(240, (await Index.QueryAsync(collection, probe, 1_000, null, default)).Count);
        var filtered = await Index.QueryAsync(collection, probe, 1_000, [documents[2]], default);
        Assert.Equal(Enumerable.Range(2_001, 40).Select(k => (long)k), filtered.Select(m => m.Key).Order());
    }

    private static VectorCollection Collection() => new(Guid.CreateVersion7(), Dims);

    private float[] Vector() => Enumerable.Range(0, Dims).Select(_ => (float)_random.NextDouble() * 2 - 1).ToArray();

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>The providers as the app registers them (AddKnowledge), over <paramref name="settings"/>, with <paramref name="services"/> changed after.</summary>
    internal static ServiceProvider Providers(Dictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddLogging();
        builder.AddKnowledge();
        services?.Invoke(builder.Services);
        return builder.Services.BuildServiceProvider();
    }
}

public sealed class EmbeddedVectorIndexContract : VectorIndexContract, IDisposable
{
    private readonly ServiceProvider _services = Providers(new() { ["Agentry:Knowledge:IndexDirectory"] = TempFiles.Directory() });

    protected override IVectorIndex Index => _services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded);

    public void Dispose() => _services.Dispose();
}

/// <summary>The chroma provider against a real ChromaDB server, in a tenant and database it creates.</summary>
public sealed class ChromaVectorIndexContract(ChromaServer chroma) : VectorIndexContract, IClassFixture<ChromaServer>, IDisposable
{
    private ServiceProvider? _services;

    protected override IVectorIndex Index => (_services ??= Providers(new()
    {
        ["Agentry:Knowledge:Chroma:Url"] = chroma.Url,
        ["Agentry:Knowledge:Chroma:Tenant"] = "contract-tests",
        ["Agentry:Knowledge:Chroma:Database"] = "vectors",
    })).GetRequiredKeyedService<IVectorIndex>(VectorProviders.Chroma);

    public void Dispose() => _services?.Dispose();
}
