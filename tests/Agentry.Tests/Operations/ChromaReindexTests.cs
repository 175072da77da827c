using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Operations;

/// <summary>The <c>reindex</c> verb against a real ChromaDB server (skipped locally when none is installed; a failure in CI).</summary>
public sealed class ChromaReindexTests(ChromaServer chroma) : IClassFixture<ChromaServer>
{
    [Fact]
    public async Task Reindex_refills_a_chroma_collection_that_lost_its_vectors()
    {
        var directory = TempFiles.Directory();
        var settings = KnowledgeSettings.SqliteNode(directory).With(new Dictionary<string, string?>
        {
            ["Agentry:Knowledge:Chroma:Url"] = chroma.Url,
            ["Agentry:Knowledge:Chroma:Tenant"] = "reindex-tests",
            ["Agentry:Knowledge:Chroma:Database"] = $"db-{Guid.NewGuid():N}"[..20],
        });
        await using var app = new AgentryApp(settings);
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);
        var collection = await client.CreateCollectionAsync(settings: new { name = "nature", vectorProvider = VectorProviders.Chroma });
        var chunks = await ReindexTests.IngestAsync(client, collection.Id);
        var before = await ReindexTests.SearchAllAsync(client, collection.Id);
        // The server lost the collection (a new ChromaDB server, say).
        await app.Services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Chroma).DropAsync(new VectorCollection(collection.Id, collection.Dimensions), CancellationToken.None);

        var reindex = (await Verb.RunAsync(settings, "reindex", $"--collection={collection.Id}")).Exited(0);

        Assert.StartsWith($"agentry: reindexed collection {collection.Id} (nature, chroma): {chunks} chunks in ", Assert.Single(reindex.Said));
        Assert.Equal(before, await ReindexTests.SearchAllAsync(client, collection.Id));
    }
}
