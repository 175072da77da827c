using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
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
