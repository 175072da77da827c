using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Agentry.Data;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Knowledge;

/// <summary>Settings for knowledge tests: an index directory of their own, a small document limit, a brisk queue.</summary>
public static class KnowledgeSettings
{
    public const int MaxDocumentBytes = 65_536;

    public static Dictionary<string, string?> For(string indexDirectory) => new()
    {
        ["Agentry:Knowledge:IndexDirectory"] = indexDirectory,
        ["Agentry:Knowledge:MaxDocumentBytes"] = MaxDocumentBytes.ToString(),
        ["Agentry:Queue:PollInterval"] = "00:00:00.050",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.050",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:00.200",
        ["Agentry:Egress:AllowedNetworks:0"] = "127.0.0.1/32",
    };

    /// <summary>A SQLite node whose database and index files live in <paramref name="directory"/> (as <c>agentry.db</c> and <c>vectors/</c>), so a second node can take them over.</summary>
    public static Dictionary<string, string?> SqliteNode(string directory) =>
        Settings.Sqlite(Path.Combine(directory, "agentry.db")).With(For(Path.Combine(directory, "vectors")));

    /// <summary>The embedded index, wrapped so a test can make its next upserts fail.</summary>
    public static void FlakyIndex(IServiceCollection services) =>
        services.AddKeyedSingleton<IVectorIndex>(VectorProviders.Embedded, (sp, _) => new FlakyVectorIndex(ActivatorUtilities.CreateInstance<UsearchVectorIndex>(sp)));
}

/// <summary>
/// The real embedded index, failing a given number of upserts first (as a full disk or a crash mid-write would), or
/// holding the next upsert into a collection until the test lets it go (to act while an index step is under way).
/// </summary>
internal sealed class FlakyVectorIndex(IVectorIndex inner) : IVectorIndex
{
    private int _failures;
    private UpsertGate? _gate;

    public void FailNextUpserts(int count) => Volatile.Write(ref _failures, count);

    /// <summary>Holds the next upsert into <paramref name="collection"/> before it reaches the index (it still observes its cancellation token).</summary>
    public UpsertGate HoldNextUpsert(Guid collection)
    {
        var gate = new UpsertGate(collection);
        Volatile.Write(ref _gate, gate);
        return gate;
    }

    public async Task UpsertAsync(VectorCollection collection, IReadOnlyList<VectorRecord> records, CancellationToken ct)
    {
        if (Volatile.Read(ref _gate) is { } gate && gate.Collection == collection.Id && Interlocked.CompareExchange(ref _gate, null, gate) == gate)
        {
            gate.Entered.TrySetResult();
            await gate.Released.Task.WaitAsync(ct);
        }
        if (Interlocked.Decrement(ref _failures) >= 0)
        {
            throw new IOException("The index file could not be written (a failure the test injected).");
        }
        await inner.UpsertAsync(collection, records, ct);
    }

    public Task DeleteDocumentAsync(VectorCollection collection, Guid documentId, CancellationToken ct) => inner.DeleteDocumentAsync(collection, documentId, ct);

    public Task<IReadOnlyList<VectorMatch>> QueryAsync(VectorCollection collection, float[] vector, int topK, IReadOnlyCollection<Guid>? documentIds, CancellationToken ct) =>
        inner.QueryAsync(collection, vector, topK, documentIds, ct);

    public Task DropAsync(VectorCollection collection, CancellationToken ct) => inner.DropAsync(collection, ct);
}

/// <summary>An upsert held by <see cref="FlakyVectorIndex.HoldNextUpsert"/>: <see cref="Entered"/> once it arrived, released by <see cref="Released"/>.</summary>
internal sealed class UpsertGate(Guid collection)
{
    public Guid Collection { get; } = collection;
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

public sealed class SqliteKnowledgeFixture : SqliteFixture
{
    private readonly Dictionary<string, string?> _extra = KnowledgeSettings.For(TempFiles.Directory());

    protected override IReadOnlyDictionary<string, string?> Extra => _extra;

    protected override Action<IServiceCollection> Services => KnowledgeSettings.FlakyIndex;
}

public sealed class PostgresKnowledgeFixture : PostgresFixture
{
    private readonly Dictionary<string, string?> _extra = KnowledgeSettings.For(TempFiles.Directory());

    protected override IReadOnlyDictionary<string, string?> Extra => _extra;

    protected override Action<IServiceCollection> Services => KnowledgeSettings.FlakyIndex;
}

/// <summary>Calls on the knowledge API that the tests share.</summary>
public static class KnowledgeCalls
{
    public const string Url = "/api/v1/collections";

    public static async Task<CollectionResponse> CreateCollectionAsync(this HttpClient client, string? name = null, object? settings = null) =>
        await (await client.PostJsonAsync(Url, settings ?? new { name = name ?? $"c-{Guid.NewGuid():N}" })).ReadAsync<CollectionResponse>(HttpStatusCode.Created);

    public static Task<HttpResponseMessage> UploadAsync(this HttpClient client, Guid collection, string fileName, byte[] content, string contentType)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        form.Add(file, "file", fileName);
        return client.PostAsync($"{Url}/{collection}/documents", form);
    }

    public static Task<HttpResponseMessage> UploadAsync(this HttpClient client, Guid collection, string fileName, string content, string contentType = "text/plain") =>
        client.UploadAsync(collection, fileName, Encoding.UTF8.GetBytes(content), contentType);

    public static async Task<DocumentResponse> AddAsync(this HttpClient client, Guid collection, string fileName, string content, string contentType = "text/plain") =>
        (await (await client.UploadAsync(collection, fileName, content, contentType)).ReadAsync<AddDocumentResponse>(HttpStatusCode.Accepted)).Document;

    /// <summary>The document once its ingestion ended (ready, or failed with its task dead).</summary>
    public static async Task<DocumentResponse> SettledAsync(this HttpClient client, Guid collection, Guid document, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var current = await (await client.GetAsync($"{Url}/{collection}/documents/{document}")).ReadAsync<DocumentResponse>();
            if (current.Status == DocumentStatuses.Ready || DateTime.UtcNow > deadline)
            {
                return current;
            }
            if (current.Status == DocumentStatuses.Failed && current.TaskId is { } task
                && (await (await client.GetAsync($"/api/v1/tasks/{task}")).ReadAsync<Agentry.Tasks.TaskResponse>()).Status == "dead")
            {
                return current;
            }
            await Task.Delay(50);
        }
    }

    public static async Task<SearchResponse> SearchAsync(this HttpClient client, Guid collection, string query, string mode, int topK = 5, object? filter = null) =>
        await (await client.PostJsonAsync($"{Url}/{collection}/search", new { query, mode, topK, filter })).ReadAsync<SearchResponse>();

    /// <summary>The chunk rows of a document, read straight from the database.</summary>
    public static List<KnowledgeChunk> Chunks(this AgentryApp app, Guid document)
    {
        using var scope = app.Services.CreateScope();
        return scope.ServiceProvider.GetRequiredService<AppDbContext>().KnowledgeChunks.Where(c => c.DocumentId == document).ToList();
    }
}
