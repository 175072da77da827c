using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Identity;

namespace Agentry.Tests.Knowledge;

/// <summary>The embedded index outlives the process: a restarted node loads the collection's file and searches it without re-ingesting.</summary>
public sealed class IndexReloadTests
{
    [Fact]
    public async Task A_restarted_node_loads_the_index_file_instead_of_rebuilding_it()
    {
        var directory = TempFiles.Directory();
        var settings = KnowledgeSettings.SqliteNode(directory);
        Guid collection, document;
        Guid? task;
        (Guid Id, string Email, string Password) user;
        await using (var first = new AgentryApp(settings))
        {
            user = await first.CreateUserAsync(await first.CreateWorkspaceAsync(), Roles.Member);
            var client = await first.SignedInClientAsync(user.Email, user.Password);
            collection = (await client.CreateCollectionAsync("lasting")).Id;
            var added = await client.AddAsync(collection, "moths.txt", "Moths navigate by keeping the moon at a fixed angle.");
            var settled = await client.SettledAsync(collection, added.Id);
            Assert.Equal(DocumentStatuses.Ready, settled.Status);
            (document, task) = (added.Id, settled.TaskId);
        }
        Assert.True(File.Exists(Path.Combine(directory, "vectors", $"{collection:N}.usearch")));

        await using var second = new AgentryApp(settings);
        var again = await second.SignedInClientAsync(user.Email, user.Password);
        var hits = (await again.SearchAsync(collection, "how do moths find their way at night?", SearchModes.Vector)).Results;
        Assert.Equal(document, Assert.Single(hits).DocumentId);
        var current = await (await again.GetAsync($"{KnowledgeCalls.Url}/{collection}/documents/{document}")).ReadAsync<DocumentResponse>();
        Assert.Equal((DocumentStatuses.Ready, task), (current.Status, current.TaskId));
    }
}
