using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Qdrant.Client;
using Qdrant.Client.Grpc;
using static Agentry.Tests.Knowledge.KnowledgeCalls;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// The server vector providers through the API: a collection on a real ChromaDB server ingested and searched, one on
/// Qdrant's client over the wire-level stand-in, and what a search answers when the provider's server is down.
/// </summary>
public sealed class VectorProviderApiTests(ChromaServer chroma) : IClassFixture<ChromaServer>
{
    private const string Text = "# Bees\n\nHoneybees dance in a figure of eight to tell their hive where the flowers are.\n\n"
        + "# Tides\n\nThe moon's pull raises the sea twice a day, so the harbour floods at dawn and dusk.";

    [Fact]
    public async Task A_chroma_collection_is_ingested_into_chroma_and_searched_there()
    {
        var settings = Settings(new()
        {
            ["Agentry:Knowledge:Chroma:Url"] = chroma.Url,
            ["Agentry:Knowledge:Chroma:Tenant"] = "api-tests",
            ["Agentry:Knowledge:Chroma:Database"] = "knowledge",
        });
        await using var app = new AgentryApp(settings);
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);

        var collection = await client.CreateCollectionAsync(settings: new { name = "nature", vectorProvider = "chroma" });
        Assert.Equal(VectorProviders.Chroma, collection.VectorProvider);
        var added = await client.AddAsync(collection.Id, "nature.md", Text, "text/markdown");
        var ready = await client.SettledAsync(collection.Id, added.Id);
        Assert.Equal(DocumentStatuses.Ready, ready.Status);

        var hits = (await client.SearchAsync(collection.Id, "how do bees tell each other where food is?", SearchModes.Vector, topK: 1)).Results;
        Assert.Equal((added.Id, "Bees"), (Assert.Single(hits).DocumentId, hits[0].HeadingPath));
        Assert.InRange(hits[0].Score, 0.3, 1.0);
        // The vectors are in Chroma, one per chunk, in the configured tenant and database.
        using var http = new HttpClient { BaseAddress = new Uri($"{chroma.Url}/api/v2/tenants/api-tests/databases/knowledge/collections/") };
        var name = $"agentry-{collection.Id:N}";
        var held = await (await http.GetAsync(name)).ReadAsync<JsonElement>();
        Assert.Equal("cosine", held.GetProperty("configuration_json").GetProperty("hnsw").GetProperty("space").GetString());
        Assert.Equal(ready.ChunkCount.ToString(), await http.GetStringAsync($"{held.GetProperty("id").GetString()}/count"));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{collection.Id}/documents/{added.Id}")).StatusCode);
        Assert.Empty((await client.SearchAsync(collection.Id, "bees", SearchModes.Vector)).Results);
        Assert.Equal("0", await http.GetStringAsync($"{held.GetProperty("id").GetString()}/count"));
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{collection.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(name)).StatusCode);
        var health = await (await app.Client().GetAsync("/health/ready")).ReadAsync<JsonElement>();
        Assert.Equal("healthy", health.GetProperty("checks").GetProperty("vectors").GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_qdrant_collection_is_ingested_and_searched_through_the_qdrant_client()
    {
        var wire = new QdrantWireStandIn();
        await using var app = new AgentryApp(Settings(new() { ["Agentry:Knowledge:Qdrant:Url"] = "http://127.0.0.1:6334" }),
            services => services.AddKeyedSingleton(VectorProviders.Qdrant, new QdrantClient(new QdrantGrpcClient(wire))));
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);

        var collection = await client.CreateCollectionAsync(settings: new { name = "nature", vectorProvider = "qdrant" });
        var added = await client.AddAsync(collection.Id, "nature.md", Text, "text/markdown");
        Assert.Equal(DocumentStatuses.Ready, (await client.SettledAsync(collection.Id, added.Id)).Status);

        var hits = (await client.SearchAsync(collection.Id, "why does the harbour flood?", SearchModes.Vector, topK: 1)).Results;
        Assert.Equal("Tides", Assert.Single(hits).HeadingPath);
        Assert.Contains("/qdrant.Points/Upsert", wire.Calls);
        Assert.Contains("/qdrant.Points/Query", wire.Calls);
        var ready = await (await app.Client().GetAsync("/health/ready")).ReadAsync<JsonElement>();
        Assert.Equal("healthy", ready.GetProperty("checks").GetProperty("vectors").GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_search_whose_vector_server_is_down_answers_503_and_keyword_search_still_works()
    {
        var closed = RedisProcess.FreePort();
        await using var app = new AgentryApp(Settings(new()
        {
            ["Agentry:Knowledge:Chroma:Url"] = $"http://127.0.0.1:{closed}",
            ["Agentry:Knowledge:Qdrant:Url"] = $"http://127.0.0.1:{closed}",
            ["Agentry:Knowledge:Chroma:Token"] = "chroma-secret-token",
        }));
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);

        foreach (var provider in new[] { VectorProviders.Chroma, VectorProviders.Qdrant })
        {
            var collection = await client.CreateCollectionAsync(settings: new { name = provider, vectorProvider = provider });
            var response = await client.PostJsonAsync($"{Url}/{collection.Id}/search", new { query = "bees", mode = SearchModes.Vector });
            Assert.NotNull(response.Headers.RetryAfter);
            var problem = await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service_unavailable");
            Assert.DoesNotContain("chroma-secret-token", problem.GetRawText());
            Assert.Empty((await client.SearchAsync(collection.Id, "bees", SearchModes.Keyword)).Results);
        }
        // Degraded, not down: the node still serves everything else. The probe is public, so it names no address.
        var ready = await app.Client().GetAsync("/health/ready");
        var vectors = (await ready.ReadAsync<JsonElement>()).GetProperty("checks").GetProperty("vectors");
        Assert.Equal(("degraded", "chroma: unreachable; qdrant: unreachable"),
            (vectors.GetProperty("status").GetString(), vectors.GetProperty("description").GetString()));
    }

    [Fact]
    public async Task A_provider_that_is_not_configured_is_refused_naming_the_field()
    {
        await using var app = new AgentryApp(Settings([]));
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);
        foreach (var provider in new[] { VectorProviders.Chroma, VectorProviders.Qdrant, "faiss" })
        {
            var problem = await (await client.PostJsonAsync(Url, new { name = provider, vectorProvider = provider }))
                .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
            Assert.True(problem.GetProperty("errors").TryGetProperty("vectorProvider", out _), problem.GetRawText());
        }
    }

    private static Dictionary<string, string?> Settings(Dictionary<string, string?> providers)
    {
        var directory = TempFiles.Directory();
        return Infrastructure.Settings.Sqlite(Path.Combine(directory, "agentry.db"))
            .With(KnowledgeSettings.For(Path.Combine(directory, "vectors"))).With(providers);
    }
}

/// <summary>The server providers' settings: checked at start only when the provider is switched on; a token never shown.</summary>
public sealed class VectorProviderSettingsTests
{
    [Fact]
    public void A_provider_is_checked_only_when_its_url_is_set_and_a_bad_setting_names_its_key()
    {
        var validator = new KnowledgeOptionsValidator();
        var off = new KnowledgeOptions { Chroma = { Tenant = "x", TokenHeader = "Cookie" }, Qdrant = { Timeout = TimeSpan.Zero } };
        Assert.True(validator.Validate(null, off).Succeeded);

        var on = new KnowledgeOptions
        {
            Chroma = { Url = "http://user:pass@chroma:8000", Tenant = "x", TokenHeader = "Cookie" },
            Qdrant = { Url = "qdrant:6334" },
        };
        var failures = validator.Validate(null, on).Failures!.ToList();
        Assert.Contains(failures, f => f.StartsWith("Agentry:Knowledge:Chroma:Url", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agentry:Knowledge:Chroma:Tenant", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agentry:Knowledge:Chroma:TokenHeader", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agentry:Knowledge:Qdrant:Url", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains("pass", StringComparison.Ordinal));
        var slow = new KnowledgeOptions { Qdrant = { Url = "http://qdrant:6334", Timeout = TimeSpan.Zero } };
        Assert.Equal(["Agentry:Knowledge:Qdrant:Timeout must be between 00:00:01 and 00:10:00."], validator.Validate(null, slow).Failures);
        Assert.True(validator.Validate(null, new KnowledgeOptions { Chroma = { Url = "https://chroma.internal:8000" }, Qdrant = { Url = "http://qdrant:6334" } }).Succeeded);
    }

    [Fact]
    public async Task The_chroma_token_rides_in_its_header_and_a_refusal_is_a_503_naming_the_setting_never_the_token()
    {
        const string Token = "chroma-token-3f9a";
        var port = RedisProcess.FreePort();
        using var listener = new HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        listener.Start();
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(string Path, string? Token)>();
        var serving = Task.Run(async () =>
        {
            // Answers as a Chroma server with token authentication answers a wrong token.
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                {
                    return; // stopped
                }
                seen.Enqueue((context.Request.Url!.AbsolutePath, context.Request.Headers["X-Chroma-Token"]));
                context.Response.StatusCode = 401;
                await context.Response.OutputStream.WriteAsync("""{"error":"AuthError","message":"Unauthorized"}"""u8.ToArray());
                context.Response.Close();
            }
        });
        var logs = new CapturedLogs();
        using var services = VectorIndexContract.Providers(new()
        {
            ["Agentry:Knowledge:Chroma:Url"] = $"http://127.0.0.1:{port}",
            ["Agentry:Knowledge:Chroma:Token"] = Token,
            ["Agentry:Knowledge:Chroma:TokenHeader"] = "X-Chroma-Token",
        }, s => s.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(logs)));
        var index = services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Chroma);

        var refused = await Assert.ThrowsAsync<Agentry.Hosting.DependencyUnavailableException>(
            () => index.QueryAsync(new VectorCollection(Guid.CreateVersion7(), 4), [1, 0, 0, 0], 3, null, default));

        Assert.Contains("Agentry:Knowledge:Chroma:Token", refused.Message);
        Assert.DoesNotContain(Token, refused.Message);
        Assert.Equal(("/api/v2/tenants/default_tenant", Token), Assert.Single(seen)); // a refusal is not retried
        Assert.NotEmpty(logs.Lines);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(Token, StringComparison.Ordinal));
        listener.Stop();
        await serving;
    }

    private sealed class CapturedLogs : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs logs) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Lines.Enqueue($"{formatter(state, exception)} {exception}");
        }
    }
}
