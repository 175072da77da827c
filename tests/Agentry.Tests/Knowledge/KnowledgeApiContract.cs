using System.Net;
using System.Text;
using System.Text.Json;
using Agentry.Knowledge;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Identity;
using Microsoft.Extensions.DependencyInjection;
using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;
using static Agentry.Tests.Knowledge.KnowledgeCalls;

namespace Agentry.Tests.Knowledge;

/// <summary>The knowledge API on every storage provider, with real MiniLM embeddings and the real embedded index.</summary>
public abstract class KnowledgeApiContract(StorageFixture fixture)
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task Collections_pin_the_model_validate_their_settings_and_stay_in_their_workspace()
    {
        var client = await ClientAsync();
        var created = await client.CreateCollectionAsync("handbook");
        Assert.Equal(("minilm/all-minilm-l6-v2", 384, VectorProviders.Embedded), (created.EmbeddingModel, created.Dimensions, created.VectorProvider));
        Assert.True(created.ChunkTokens <= 254 && created.ChunkOverlap < created.ChunkTokens);

        await (await client.PostJsonAsync(Url, new { name = "handbook" })).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        var wrongModel = await (await client.PostJsonAsync(Url, new { name = "m", embeddingModel = "ollama/nomic-embed-text" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(wrongModel.GetProperty("errors").TryGetProperty("embeddingModel", out _));
        var wrongDimensions = await (await client.PostJsonAsync(Url, new { name = "d", dimensions = 768 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(wrongDimensions.GetProperty("errors").TryGetProperty("dimensions", out _));
        var tooLong = await (await client.PostJsonAsync(Url, new { name = "t", chunkTokens = 1000 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(tooLong.GetProperty("errors").TryGetProperty("chunkTokens", out _));
        await (await client.PostJsonAsync(Url, new { name = "o", chunkTokens = 50, chunkOverlap = 50 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostJsonAsync(Url, new { name = "v", vectorProvider = "faiss" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        var renamed = await (await client.PatchAsync($"{Url}/{created.Id}", HttpAssertions.Json(new { name = "manual", description = "How we work" }))).ReadAsync<CollectionResponse>();
        Assert.Equal(("manual", "How we work"), (renamed.Name, renamed.Description));
        var page = await (await client.GetAsync(Url)).ReadAsync<Agentry.Data.Page<CollectionResponse>>();
        Assert.Equal([created.Id], page.Items.Select(c => c.Id));

        var stranger = await ClientAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"{Url}/{created.Id}")).StatusCode);
        Assert.Empty((await (await stranger.GetAsync(Url)).ReadAsync<Agentry.Data.Page<CollectionResponse>>()).Items);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.UploadAsync(created.Id, "a.txt", "hello")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.PostJsonAsync($"{Url}/{created.Id}/search", new { query = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.DeleteAsync($"{Url}/{created.Id}")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{created.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"{Url}/{created.Id}")).StatusCode);
    }

    [Fact]
    public async Task Every_format_is_ingested_step_by_step_and_found()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync()).Id;
        var docs = new (string Name, byte[] Content, string Type, string Word)[]
        {
            ("notes.txt", Utf8("The zephyrine valve regulates coolant flow.\n\nIt was fitted in 2020."), "text/plain", "zephyrine"),
            ("guide.md", Utf8("# Guide\n\n## Setup\n\nInstall the quorblax adapter first.\n\n## Use\n\nPress start."), "text/markdown", "quorblax"),
            ("page.html", Utf8("<html><head><style>.x{color:red}</style><script>var scriptonly = 'glimmerwick';</script></head><body><h1>Page</h1><p>The marlinspike &amp; fid are rope tools.</p></body></html>"), "text/html", "marlinspike"),
            ("report.pdf", Pdf("Introduction to the report.", "The frobnitz gauge reads high on page two."), "application/pdf", "frobnitz"),
            ("data.json", Utf8("""{"machines":[{"name":"lathe","maker":"Brankworth"},{"name":"mill","maker":"Oster"}]}"""), "application/json", "brankworth"),
            ("table.csv", Utf8("part,supplier\nsprocket,Tandlewick Ltd\n\"gear, large\",Oster\n"), "text/csv", "tandlewick"),
        };
        var ids = new Dictionary<string, Guid>();
        foreach (var (name, content, type, _) in docs)
        {
            var response = await client.UploadAsync(collection, name, content, type);
            var added = await response.ReadAsync<AddDocumentResponse>(HttpStatusCode.Accepted);
            Assert.False(added.Duplicate);
            Assert.Equal($"{Url}/{collection}/documents/{added.Document.Id}", response.Headers.Location?.OriginalString);
            Assert.NotNull(added.Document.TaskId);
            ids[name] = added.Document.Id;
        }
        foreach (var (name, _, _, word) in docs)
        {
            var document = await client.SettledAsync(collection, ids[name]);
            Assert.True(document.Status == DocumentStatuses.Ready, $"{name}: {document.Status} {document.Error}");
            Assert.All(document.Steps, s => Assert.Equal("done", s.Status));
            Assert.Equal(IngestionSteps.All, document.Steps.Select(s => s.Name));
            Assert.True(document.ChunkCount > 0);
            Assert.Equal(document.ChunkCount, _app.Chunks(document.Id).Count);
            foreach (var mode in new[] { SearchModes.Keyword, SearchModes.Hybrid })
            {
                var hits = (await client.SearchAsync(collection, word, mode)).Results;
                Assert.True(hits.Count > 0 && hits[0].DocumentId == ids[name], $"{mode} search for '{word}' did not find {name} first");
            }
        }
        Assert.Empty((await client.SearchAsync(collection, "glimmerwick", SearchModes.Keyword)).Results); // script text is not extracted
        var pdfHit = (await client.SearchAsync(collection, "frobnitz gauge", SearchModes.Keyword)).Results[0];
        Assert.Equal(2, pdfHit.Page);
        var mdHit = (await client.SearchAsync(collection, "quorblax adapter", SearchModes.Keyword)).Results[0];
        Assert.Equal("Guide > Setup", mdHit.HeadingPath);
        var vector = (await client.SearchAsync(collection, "which tools are used for working with rope?", SearchModes.Vector)).Results;
        Assert.Equal(ids["page.html"], vector[0].DocumentId);
        Assert.True(vector[0].Score is > 0 and <= 1.0001);

        var list = await (await client.GetAsync($"{Url}/{collection}/documents?limit=4")).ReadAsync<Agentry.Data.Page<DocumentResponse>>();
        Assert.Equal(4, list.Items.Count);
        var rest = await (await client.GetAsync($"{Url}/{collection}/documents?limit=4&cursor={list.NextCursor}")).ReadAsync<Agentry.Data.Page<DocumentResponse>>();
        Assert.Equal(ids.Values.Order(), list.Items.Concat(rest.Items).Select(d => d.Id).Order());

        var filtered = (await client.SearchAsync(collection, "maker supplier", SearchModes.Hybrid, filter: new { documentIds = new[] { ids["table.csv"] } })).Results;
        Assert.NotEmpty(filtered);
        Assert.All(filtered, h => Assert.Equal(ids["table.csv"], h.DocumentId));
    }

    [Fact]
    public async Task Bad_documents_and_searches_are_refused_with_problems()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync()).Id;
        await (await client.UploadAsync(collection, "tool.exe", [0x4D, 0x5A, 0x90], "application/octet-stream")).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await (await client.UploadAsync(collection, "big.txt", new string('a', KnowledgeSettings.MaxDocumentBytes + 1))).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
        await (await client.PostAsync($"{Url}/{collection}/documents", new MultipartFormDataContent { { new StringContent("x"), "other" } })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostAsync($"{Url}/{collection}/documents", new StringContent("x", Encoding.UTF8, "application/xml"))).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        await (await client.PostJsonAsync($"{Url}/{collection}/documents", new { url = "ftp://example.com/a.txt" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostJsonAsync($"{Url}/{collection}/documents", new { url = "http://10.1.2.3/a.txt" })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "url_not_allowed");
        await (await client.PostJsonAsync($"{Url}/{collection}/search", new { query = "x", topK = 0 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostJsonAsync($"{Url}/{collection}/search", new { query = "x", topK = 51 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostJsonAsync($"{Url}/{collection}/search", new { query = "x", mode = "fuzzy" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await client.PostJsonAsync($"{Url}/{collection}/search", new { query = "" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        // Content that is not what its format says fails its extract step for good, with the reason.
        var broken = await client.AddAsync(collection, "broken.json", "{ not json", "application/json");
        var settled = await client.SettledAsync(collection, broken.Id);
        Assert.Equal((DocumentStatuses.Failed, "failed"), (settled.Status, settled.Steps[0].Status));
        Assert.Contains("not valid JSON", settled.Error);
    }

    [Fact]
    public async Task The_same_content_is_ingested_once_and_a_url_is_fetched_through_the_egress_guard()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync()).Id;
        var first = await client.AddAsync(collection, "a.md", "# Dup\n\nThe same words twice.", "text/markdown");
        var again = await (await client.UploadAsync(collection, "b.md", "# Dup\n\nThe same words twice.", "text/markdown")).ReadAsync<AddDocumentResponse>();
        Assert.True(again.Duplicate);
        Assert.Equal(first.Id, again.Document.Id);

        using var server = new StaticServer("# Fetched\n\nThe oriel window faces the garden.", "text/markdown");
        var fetched = await (await client.PostJsonAsync($"{Url}/{collection}/documents", new { url = server.Url + "doc.md" })).ReadAsync<AddDocumentResponse>(HttpStatusCode.Accepted);
        Assert.Equal((server.Url + "doc.md", DocumentFormats.Markdown), (fetched.Document.SourceUrl, fetched.Document.Format));
        Assert.Equal(DocumentStatuses.Ready, (await client.SettledAsync(collection, fetched.Document.Id)).Status);
        Assert.Equal(fetched.Document.Id, (await client.SearchAsync(collection, "oriel window", SearchModes.Keyword)).Results[0].DocumentId);
    }

    [Fact]
    public async Task Deleting_a_document_removes_its_chunks_and_vectors()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync()).Id;
        var keep = await client.AddAsync(collection, "keep.txt", "Otters hold hands while they sleep on the water.");
        var drop = await client.AddAsync(collection, "drop.txt", "Penguins propose to their mates with a pebble.");
        await client.SettledAsync(collection, keep.Id);
        await client.SettledAsync(collection, drop.Id);
        Assert.Contains((await client.SearchAsync(collection, "penguin pebble", SearchModes.Vector)).Results, h => h.DocumentId == drop.Id);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{collection}/documents/{drop.Id}")).StatusCode);

        Assert.Empty(_app.Chunks(drop.Id));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"{Url}/{collection}/documents/{drop.Id}")).StatusCode);
        foreach (var mode in new[] { SearchModes.Vector, SearchModes.Keyword, SearchModes.Hybrid })
        {
            var hits = (await client.SearchAsync(collection, "penguin pebble", mode, topK: 10)).Results;
            Assert.DoesNotContain(hits, h => h.DocumentId == drop.Id);
        }
        var index = _app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded);
        var all = await index.QueryAsync(new VectorCollection(collection, 384), new float[384].Select((_, i) => i == 0 ? 1f : 0f).ToArray(), 100, null, default);
        Assert.Equal(_app.Chunks(keep.Id).Count, all.Count);
    }

    [Fact]
    public async Task A_document_deleted_while_its_vectors_are_written_leaves_no_vector_behind()
    {
        var (client, collection, added, gate) = await IndexStepHeldAsync("gulls.txt", "Gulls drop shellfish on rocks to crack them open.");

        // The index step read the chunks and is about to upsert them; the delete removes the rows and (no) vectors first.
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{collection}/documents/{added.Id}")).StatusCode);
        gate.Released.SetResult();

        TaskResponse? task = null;
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
            (task = await (await client.GetAsync($"/api/v1/tasks/{added.TaskId}")).ReadAsync<TaskResponse>()).Status == AgentTaskStatus.Succeeded,
            TimeSpan.FromSeconds(30)), $"the ingestion task ended {task?.Status}: {task?.LastError}");
        Assert.Equal("deleted", task!.Result!.Value.GetProperty("skipped").GetString());
        var index = _app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded);
        var probe = new float[384].Select((_, i) => i == 0 ? 1f : 0f).ToArray();
        Assert.Empty(await index.QueryAsync(new VectorCollection(collection, 384), probe, 10, [added.Id], default));
        Assert.Empty(await index.QueryAsync(new VectorCollection(collection, 384), probe, 10, null, default));
    }

    /// <summary>The task once final (the worker writes that just after the handler has finished the document).</summary>
    private static async Task<TaskResponse> FinalTaskAsync(HttpClient client, Guid id)
    {
        TaskResponse task = null!;
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => AgentTaskStatus.IsFinal((task = await (await client.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>()).Status),
            TimeSpan.FromSeconds(30)), $"task {id} is still {task.Status}");
        return task;
    }

    [Fact]
    public async Task Cancelling_a_running_ingestion_fails_its_document_saying_so()
    {
        var (client, collection, added, _) = await IndexStepHeldAsync("terns.txt", "Arctic terns fly from pole to pole every year.");

        var cancel = await client.PostAsync($"/api/v1/tasks/{added.TaskId}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);

        DocumentResponse? document = null;
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
            (document = await (await client.GetAsync($"{Url}/{collection}/documents/{added.Id}")).ReadAsync<DocumentResponse>()).Status != DocumentStatuses.Processing,
            TimeSpan.FromSeconds(30)), "the document stayed processing after its task was cancelled");
        Assert.Equal(DocumentStatuses.Failed, document!.Status);
        Assert.Contains("cancelled", document.Error);
        Assert.Equal(["done", "done", "done", "failed"], document.Steps.Select(s => s.Status));
        // The document's state is written by the handler, the task's final state by the worker just after it.
        var task = await FinalTaskAsync(client, added.TaskId!.Value);
        Assert.Equal(AgentTaskStatus.Cancelled, task.Status);
        Assert.Empty(await _app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded)
            .QueryAsync(new VectorCollection(collection, 384), new float[384].Select((_, i) => i == 0 ? 1f : 0f).ToArray(), 10, null, default));
    }

    [Fact]
    public async Task A_failed_step_shows_its_error_and_the_retry_resumes_there_without_duplicating_chunks()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync(settings: new { name = "resume", chunkTokens = 40, chunkOverlap = 8 })).Id;
        var flaky = (FlakyVectorIndex)_app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded);
        flaky.FailNextUpserts(2);
        var text = string.Join("\n\n", Enumerable.Range(1, 12).Select(i => $"Paragraph {i} tells of harbour number {i}, where boats are mended and nets are dried in the sun."));
        var added = await client.AddAsync(collection, "harbours.txt", text);

        var settled = await client.SettledAsync(collection, added.Id);
        Assert.Equal(DocumentStatuses.Ready, settled.Status);
        Assert.Null(settled.Error);
        var task = await FinalTaskAsync(client, settled.TaskId!.Value);
        Assert.Equal((AgentTaskStatus.Succeeded, 3), (task.Status, task.Attempts));
        var events = (await (await client.GetAsync($"/api/v1/tasks/{settled.TaskId}/events")).ReadAsync<TaskEventPage>()).Items;
        var steps = events.Where(e => e.Type == TaskEventTypes.Progress).Select(e => $"{e.Data!.Value.GetProperty("step").GetString()}:{e.Data.Value.GetProperty("status").GetString()}").ToList();
        // Extract, chunk and embed ran once; only the index step ran again, twice.
        Assert.Equal(["extract:running", "extract:done", "chunk:running", "chunk:done", "embed:running", "embed:done",
            "index:running", "index:failed", "index:running", "index:failed", "index:running", "index:done"], steps);
        var failed = events.First(e => e.Type == TaskEventTypes.Progress && e.Data!.Value.GetProperty("status").GetString() == "failed");
        Assert.Contains("could not be written", failed.Data!.Value.GetProperty("error").GetString());

        var chunks = _app.Chunks(added.Id);
        Assert.True(chunks.Count > 3, $"{chunks.Count} chunks");
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Position).Order());
        Assert.Equal(settled.ChunkCount, chunks.Count);
        Assert.All(chunks, c => Assert.True(c.Tokens <= 40, $"chunk of {c.Tokens} tokens"));
        var hits = (await client.SearchAsync(collection, "harbour number 7", SearchModes.Hybrid, topK: 50)).Results;
        Assert.Equal(hits.Count, hits.Select(h => h.ChunkId).Distinct().Count());
    }

    [Fact]
    public async Task Changing_the_chunk_size_re_ingests_every_document_in_the_background()
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync(settings: new { name = "rechunk", chunkTokens = 200, chunkOverlap = 0 })).Id;
        var text = string.Join("\n\n", Enumerable.Range(1, 10).Select(i => $"Section {i} describes lantern {i} which burns whale oil in the old tower."));
        var added = await client.AddAsync(collection, "lanterns.txt", text);
        var before = await client.SettledAsync(collection, added.Id);

        var changed = await (await client.PatchAsync($"{Url}/{collection}", HttpAssertions.Json(new { chunkTokens = 30, chunkOverlap = 5 }))).ReadAsync<CollectionResponse>();
        Assert.Equal((30, 5), (changed.ChunkTokens, changed.ChunkOverlap));
        var after = await client.GetAsync($"{Url}/{collection}/documents/{added.Id}");
        var current = await after.ReadAsync<DocumentResponse>();
        Assert.NotEqual(before.TaskId, current.TaskId);

        var settled = await client.SettledAsync(collection, added.Id);
        Assert.Equal(DocumentStatuses.Ready, settled.Status);
        Assert.True(settled.ChunkCount > before.ChunkCount, $"{before.ChunkCount} -> {settled.ChunkCount}");
        Assert.Equal(settled.ChunkCount, _app.Chunks(added.Id).Count);
        var hits = (await client.SearchAsync(collection, "lantern whale oil", SearchModes.Vector, topK: 50)).Results;
        Assert.Equal(settled.ChunkCount, hits.Count);
        await (await client.PatchAsync($"{Url}/{collection}", HttpAssertions.Json(new { embeddingModel = "ollama/nomic-embed-text" }))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
    }

    /// <summary>A document whose index step is under way, its upsert held until the test releases <c>gate</c>.</summary>
    private async Task<(HttpClient Client, Guid Collection, DocumentResponse Added, UpsertGate Gate)> IndexStepHeldAsync(string name, string text)
    {
        var client = await ClientAsync();
        var collection = (await client.CreateCollectionAsync()).Id;
        var gate = ((FlakyVectorIndex)_app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Embedded)).HoldNextUpsert(collection);
        var added = await client.AddAsync(collection, name, text);
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return (client, collection, added, gate);
    }

    private async Task<HttpClient> ClientAsync() => await _app.UserClientAsync(await _app.CreateWorkspaceAsync(), Roles.Member);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>A PDF of one page per text, written with PdfPig's builder.</summary>
    private static byte[] Pdf(params string[] pages)
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        foreach (var text in pages)
        {
            builder.AddPage(PageSize.A4).AddText(text, 12, new PdfPoint(40, 700), font);
        }
        return builder.Build();
    }
}

/// <summary>Serves one document on a loopback port, for documents added by URL.</summary>
internal sealed class StaticServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    public StaticServer(string body, string contentType)
    {
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Url = $"http://127.0.0.1:{port}/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception)
                {
                    return;
                }
                var bytes = Encoding.UTF8.GetBytes(body);
                context.Response.ContentType = contentType;
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        });
    }

    public string Url { get; }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
    }
}

public sealed class SqliteKnowledgeApiTests(SqliteKnowledgeFixture fixture) : KnowledgeApiContract(fixture), IClassFixture<SqliteKnowledgeFixture>;

public sealed class PostgresKnowledgeApiTests(PostgresKnowledgeFixture fixture) : KnowledgeApiContract(fixture), IClassFixture<PostgresKnowledgeFixture>;
