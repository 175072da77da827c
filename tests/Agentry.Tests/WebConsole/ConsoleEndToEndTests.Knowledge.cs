using System.Net;
using Agentry.Data;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;

namespace Agentry.Tests.WebConsole;

public sealed partial class ConsoleEndToEndTests
{
    [Fact]
    public async Task Knowledge_creates_a_collection_uploads_files_shows_their_ingestion_and_finds_a_phrase_in_every_mode()
    {
        var name = $"console-{Guid.NewGuid():N}"[..20];
        var phrase = $"violet comet {Guid.NewGuid():N}"[..24];
        var result = await fixture.RunScenarioAsync("knowledge.mjs", new Dictionary<string, string>
        {
            ["AGENTRY_COLLECTION"] = name,
            ["AGENTRY_PHRASE"] = phrase,
        }, output);

        using var admin = await fixture.AdminClientAsync();
        var id = Guid.Parse(result.GetProperty("collectionId").GetString()!);
        var collection = await (await admin.GetAsync($"{KnowledgeCalls.Url}/{id}")).ReadAsync<CollectionResponse>();
        Assert.Equal((name, "Made by the console test"), (collection.Name, collection.Description));

        // The upload that stayed is ready with the chunks the page showed; the one deleted is gone.
        var documents = await (await admin.GetAsync($"{KnowledgeCalls.Url}/{id}/documents")).ReadAsync<Page<DocumentResponse>>();
        var document = Assert.Single(documents.Items);
        Assert.Equal(("observatory-log.txt", DocumentStatuses.Ready), (document.Name, document.Status));
        Assert.All(document.Steps, s => Assert.Equal("done", s.Status));
        Assert.True(document.ChunkCount > 0);
        Assert.Equal(document.ChunkCount, result.GetProperty("chunks").GetInt32());

        // The same search through the API finds it, with the text the page showed.
        foreach (var mode in new[] { SearchModes.Hybrid, SearchModes.Vector, SearchModes.Keyword })
        {
            var found = await admin.SearchAsync(id, phrase, mode);
            var hit = found.Results[0];
            Assert.Equal(document.Id, hit.DocumentId);
            Assert.Contains(phrase, hit.Text);
            Assert.Equal(hit.Text, result.GetProperty("found").GetProperty(mode).GetProperty("text").GetString());
        }
    }
}
