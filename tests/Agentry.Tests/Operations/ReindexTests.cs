using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;

namespace Agentry.Tests.Operations;

/// <summary>
/// The <c>reindex</c> verb, run as the shipped program: a collection's vector index rebuilt from the vectors kept in the
/// database answers searches as the index it replaces did.
/// </summary>
public sealed class ReindexTests
{
    private static readonly string[] Documents =
    [
        "# Bees\n\nHoneybees dance in a figure of eight to tell their hive where the flowers are.",
        "# Tides\n\nThe moon's pull raises the sea twice a day, so the harbour floods at dawn and dusk.",
        "# Bread\n\nSourdough rises because wild yeast and bacteria ferment the flour and release gas.",
        "# Glaciers\n\nA glacier carves its valley into a U shape as the ice grinds the rock beneath it.",
    ];

    private static readonly string[] Queries =
    [
        "how do bees tell each other where food is?",
        "why does the sea come in and go out?",
        "what makes dough rise?",
        "how are mountain valleys shaped by ice?",
    ];

    [Fact]
    public async Task Reindex_rebuilds_a_lost_embedded_index_from_the_stored_vectors()
    {
        var directory = TempFiles.Directory();
        var vectors = Path.Combine(directory, "vectors");
        var settings = KnowledgeSettings.SqliteNode(directory);
        var name = $"reindexed-{Guid.NewGuid():N}";
        (Guid Id, string Email, string Password) user;
        Guid collection;
        int chunks;
        List<List<Guid>> before;
        await using (var app = new AgentryApp(settings))
        {
            user = await app.CreateUserAsync(await app.CreateWorkspaceAsync(), Roles.Member);
            var client = await app.SignedInClientAsync(user.Email, user.Password);
            collection = (await client.CreateCollectionAsync(name)).Id;
            chunks = await IngestAsync(client, collection);
            before = await SearchAllAsync(client, collection);
        }
        Directory.Delete(vectors, recursive: true);

        var reindex = (await Verb.RunAsync(settings, "reindex", "--collection", name)).Exited(0);

        var line = Assert.Single(reindex.Said);
        Assert.StartsWith($"agentry: reindexed collection {collection} ({name}, embedded): {chunks} chunks in ", line);
        Assert.True(File.Exists(Path.Combine(vectors, $"{collection:N}.usearch")));
        await using var again = new AgentryApp(settings);
        Assert.Equal(before, await SearchAllAsync(await again.SignedInClientAsync(user.Email, user.Password), collection));
    }

    [Fact]
    public async Task Reindex_of_an_unknown_collection_is_refused_naming_it()
    {
        var settings = Settings.Sqlite(TempFiles.Database());
        Assert.Equal(0, (await Verb.RunAsync(settings, "migrate")).ExitCode);

        var line = (await Verb.RunAsync(settings, "reindex", "--collection", "no-such-collection")).Refused();

        Assert.Equal("agentry: reindex: No collection has the id or name 'no-such-collection'.", line);
    }

    internal static async Task<int> IngestAsync(HttpClient client, Guid collection)
    {
        var chunks = 0;
        for (var i = 0; i < Documents.Length; i++)
        {
            var added = await client.AddAsync(collection, $"doc-{i}.md", Documents[i], "text/markdown");
            var settled = await client.SettledAsync(collection, added.Id);
            Assert.Equal(DocumentStatuses.Ready, settled.Status);
            chunks += settled.ChunkCount;
        }
        return chunks;
    }

    /// <summary>Each query's chunks, closest first.</summary>
    internal static async Task<List<List<Guid>>> SearchAllAsync(HttpClient client, Guid collection)
    {
        var results = new List<List<Guid>>();
        foreach (var query in Queries)
        {
            var hits = (await client.SearchAsync(collection, query, SearchModes.Vector, topK: 3)).Results;
            Assert.Equal(3, hits.Count);
            results.Add([.. hits.Select(h => h.ChunkId)]);
        }
        return results;
    }
}
