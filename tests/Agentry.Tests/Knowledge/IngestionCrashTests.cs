using System.Net;
using System.Text;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Models;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Cloud.Unum.USearch;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Agentry.Tests.Knowledge.KnowledgeCalls;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// Ingestion's durability with real processes: an API node in the test accepts the documents and sweeps lapsed leases,
/// while separate worker processes (the shipped program with <c>Agentry:Role=worker</c>, MiniLM and the embedded index
/// in them) are killed with SIGKILL in the middle of embedding or indexing. Every document must still end ready, with
/// exactly the chunks a clean run makes and each chunk's vector in the index once.
/// </summary>
public abstract class IngestionCrashContract(ITestOutputHelper output)
{
    private const int ChunkTokens = 60;
    private const int ChunkOverlap = 10;
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(4);

    /// <summary>The storage settings every node of the test shares, and what to dispose afterwards.</summary>
    protected abstract Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync();

    [Fact]
    public async Task Every_document_ends_ready_with_no_duplicate_chunk_or_vector_when_workers_are_killed_mid_ingestion()
    {
        var (storage, owned) = await StorageAsync();
        await using var _ = owned;
        var settings = storage.With(KnowledgeSettings.For(TempFiles.Directory())).With(QueueSettings());
        await using var api = new AgentryApp(settings.With(Role("api")));
        var client = await api.UserClientAsync(await api.CreateWorkspaceAsync(), Roles.Member);
        var collection = (await client.CreateCollectionAsync(settings: new { name = "crash", chunkTokens = ChunkTokens, chunkOverlap = ChunkOverlap })).Id;
        var texts = Enumerable.Range(1, 6).Select(Report).ToList();
        var documents = new List<Guid>();
        foreach (var (text, i) in texts.Select((t, i) => (t, i)))
        {
            documents.Add((await client.AddAsync(collection, $"report-{i + 1}.txt", text)).Id);
        }

        var kills = new List<string>();
        for (var round = 0; round < 3; round++)
        {
            await using var worker = await StartWorkerAsync(settings);
            // Mid-ingestion: a document whose embed step has committed part of its vectors, or whose index step runs.
            string? at = null;
            // The second kill waits for an index step if one comes along while two or more documents are still to do; the
            // others (and this one once only two are left) take the first document caught mid-way, so a fast worker that
            // finishes everything while the test waits for an index step cannot leave too few documents to catch.
            if (round == 1)
            {
                await HttpAssertions.EventuallyAsync(async () => (at = await MidIngestionAsync(api, documents, indexingOnly: true)) is not null
                    || (await StatusesAsync(api, documents)).Count(s => s != DocumentStatuses.Ready) <= 2, TimeSpan.FromSeconds(30));
            }
            await HttpAssertions.EventuallyAsync(async () =>
                (at ??= await MidIngestionAsync(api, documents)) is not null || (await StatusesAsync(api, documents)).All(s => s == DocumentStatuses.Ready),
                TimeSpan.FromMinutes(2));
            if (at is null)
            {
                break;
            }
            worker.Kill();
            kills.Add(at);
            output.WriteLine($"kill {round + 1}: {at}");
        }
        Assert.True(kills.Count >= 2, $"only {kills.Count} kills caught a document mid-ingestion");
        await using (await StartWorkerAsync(settings))
        {
            Assert.True(await HttpAssertions.EventuallyAsync(async () => (await StatusesAsync(api, documents)).All(s => s == DocumentStatuses.Ready), TimeSpan.FromMinutes(5)),
                $"documents ended {string.Join(", ", await StatusesAsync(api, documents))}");
        }

        var tokenizer = new MiniLmEmbeddingGenerator();
        var keys = new List<long>();
        for (var i = 0; i < documents.Count; i++)
        {
            var expected = Chunker.Split(DocumentExtraction.Extract(DocumentFormats.Text, Encoding.UTF8.GetBytes(texts[i])), tokenizer.CountTokens, ChunkTokens, ChunkOverlap);
            var chunks = api.Chunks(documents[i]).OrderBy(c => c.Position).ToList();
            Assert.Equal(expected.Select(c => (c.Position, c.Text)), chunks.Select(c => (c.Position, c.Text)));
            Assert.All(chunks, c => Assert.Equal(384 * sizeof(float), c.Embedding?.Length));
            var document = await (await client.GetAsync($"{Url}/{collection}/documents/{documents[i]}")).ReadAsync<DocumentResponse>();
            Assert.Equal((expected.Count, (string?)null), (document.ChunkCount, document.Error));
            keys.AddRange(chunks.Select(c => c.VectorKey));
        }
        Assert.Equal(keys.Count, keys.Distinct().Count());

        // The index the workers wrote, read from its file: one vector per chunk, none left over from an interrupted attempt.
        var directory = settings["Agentry:Knowledge:IndexDirectory"]!;
        using (var index = new USearchIndex(Path.Combine(directory, $"{collection:N}.usearch")))
        {
            Assert.Equal((ulong)keys.Count, index.Size());
            Assert.All(keys, k => Assert.Equal(1, (int)index.Count((ulong)k)));
        }
        // And through the API (this node loads the file on its first search): every chunk found once.
        var hits = (await client.SearchAsync(collection, "which harbour mends the nets of report three?", SearchModes.Vector, topK: 50)).Results;
        Assert.Equal(Math.Min(50, keys.Count), hits.Count);
        Assert.Equal(hits.Count, hits.Select(h => h.ChunkId).Distinct().Count());

        // A document is ready before its task's final state is written (by the worker, just after): read them once final.
        TaskResponse[] tasks = [];
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            tasks = await Task.WhenAll(documents.Select(async d =>
                await (await client.GetAsync($"/api/v1/tasks/{(await (await client.GetAsync($"{Url}/{collection}/documents/{d}")).ReadAsync<DocumentResponse>()).TaskId}"))
                    .ReadAsync<TaskResponse>()));
            return tasks.All(t => AgentTaskStatus.IsFinal(t.Status));
        }, TimeSpan.FromSeconds(30)), $"tasks not final: {string.Join(", ", tasks.Select(t => t.Status))}");
        Assert.All(tasks, t => Assert.Equal(AgentTaskStatus.Succeeded, t.Status));
        output.WriteLine($"{keys.Count} chunks in {documents.Count} documents; kills at: {string.Join("; ", kills)}; attempts: {string.Join(", ", tasks.Select(t => t.Attempts))}");
    }

    [Fact]
    public async Task Cancelling_a_queued_ingestion_fails_its_document_saying_it_was_cancelled()
    {
        var (storage, owned) = await StorageAsync();
        await using var _ = owned;
        // A node without workers: the task stays queued until it is cancelled.
        await using var api = new AgentryApp(storage.With(KnowledgeSettings.For(TempFiles.Directory())).With(Role("api")));
        var client = await api.UserClientAsync(await api.CreateWorkspaceAsync(), Roles.Member);
        var collection = (await client.CreateCollectionAsync()).Id;
        var added = await client.AddAsync(collection, "swifts.txt", "Swifts sleep on the wing.");
        Assert.Equal(DocumentStatuses.Queued, added.Status);

        await (await client.PostAsync($"/api/v1/tasks/{added.TaskId}/cancel", null)).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);

        var document = await (await client.GetAsync($"{Url}/{collection}/documents/{added.Id}")).ReadAsync<DocumentResponse>();
        Assert.Equal(DocumentStatuses.Failed, document.Status);
        Assert.Equal("The ingestion was cancelled: Cancelled before it ran.", document.Error);
        Assert.Equal(["failed", "pending", "pending", "pending"], document.Steps.Select(s => s.Status));
        var failed = await (await client.GetAsync($"{Url}/{collection}/documents?status=failed")).ReadAsync<Page<DocumentResponse>>();
        Assert.Equal([added.Id], failed.Items.Select(d => d.Id));
    }

    /// <summary>Where ingestion is now, if some document is mid-way through its embed or index step.</summary>
    private static async Task<string?> MidIngestionAsync(AgentryApp api, List<Guid> documents, bool indexingOnly = false)
    {
        await using var scope = api.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var running = await db.KnowledgeDocuments.AsNoTracking()
            .Where(d => documents.Contains(d.Id) && d.Status == DocumentStatuses.Processing && d.StepsDone >= 2)
            .Select(d => new { d.Id, d.StepsDone, d.ChunkCount }).ToListAsync();
        foreach (var d in running)
        {
            if (d.StepsDone == 3)
            {
                return $"document {documents.IndexOf(d.Id) + 1} indexing";
            }
            if (indexingOnly)
            {
                continue;
            }
            var embedded = await db.KnowledgeChunks.CountAsync(c => c.DocumentId == d.Id && c.Embedding != null);
            if (embedded > 0 && embedded < d.ChunkCount)
            {
                return $"document {documents.IndexOf(d.Id) + 1} embedding ({embedded} of {d.ChunkCount} chunks embedded)";
            }
        }
        return null;
    }

    private static async Task<List<string>> StatusesAsync(AgentryApp api, IReadOnlyList<Guid> documents)
    {
        await using var scope = api.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var statuses = await db.KnowledgeDocuments.AsNoTracking().Where(d => documents.Contains(d.Id)).ToDictionaryAsync(d => d.Id, d => d.Status);
        return documents.Select(d => statuses.GetValueOrDefault(d, "missing")).ToList();
    }

    /// <summary>A report of many short paragraphs, longer for each number: some 55 to 110 chunks of at most 60 tokens.</summary>
    private static string Report(int number) => string.Join("\n\n", Enumerable.Range(1, 90 + 20 * number).Select(i =>
        $"Report {number}, paragraph {i}: the harbour at berth {i * number} mends nets, dries {i + number} sails and logs the tide at {i % 12 + 1} o'clock."));

    private static Dictionary<string, string?> QueueSettings() => new()
    {
        ["Agentry:Queue:Lease"] = Lease.ToString(),
        ["Agentry:Queue:Heartbeat"] = "00:00:00.500",
        ["Agentry:Queue:PollInterval"] = "00:00:00.050",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.050",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:00.500",
        ["Agentry:Knowledge:MaxAttempts"] = "20",
    };

    private static Dictionary<string, string?> Role(string role) => new() { [Agentry.Tasks.TaskExtensions.RoleKey] = role };

    private static Task<AgentryProcess> StartWorkerAsync(Dictionary<string, string?> settings) => AgentryProcess.StartNodeAsync(settings.With(Role("worker")));
}

public sealed class SqliteIngestionCrashTests(ITestOutputHelper output) : IngestionCrashContract(output)
{
    protected override Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync() =>
        Task.FromResult<(Dictionary<string, string?>, IAsyncDisposable?)>((Settings.Sqlite(TempFiles.Database()), null));
}

public sealed class PostgresIngestionCrashTests(ITestOutputHelper output) : IngestionCrashContract(output)
{
    protected override async Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync()
    {
        var database = await PostgresDatabase.CreateAsync();
        return (Settings.Postgres(database.ConnectionString), database);
    }
}
