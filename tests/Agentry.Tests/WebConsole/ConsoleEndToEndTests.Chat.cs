using System.Net;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;

namespace Agentry.Tests.WebConsole;

public sealed partial class ConsoleEndToEndTests
{
    [Fact]
    public async Task Chat_streams_replies_token_by_token_stops_one_showing_its_sources_and_follows_one_after_a_reload_or_a_dropped_connection()
    {
        using var admin = await fixture.AdminClientAsync();
        // The browser reaches the node through a proxy the scenario can cut.
        await using var proxy = await CuttableProxy.StartAsync(fixture.BaseAddress);
        var phrase = $"harbour lantern {Guid.NewGuid():N}";
        var collection = await admin.CreateCollectionAsync($"chat-sources-{Guid.NewGuid():N}"[..24]);
        var document = await admin.AddAsync(collection.Id, "lantern-notes.txt", $"The {phrase} is lit at dusk by the keeper of the north pier.");
        Assert.Equal(DocumentStatuses.Ready, (await admin.SettledAsync(collection.Id, document.Id)).Status);

        var result = await fixture.RunScenarioAsync("chat.mjs", new Dictionary<string, string>
        {
            ["AGENTRY_MODEL"] = ConsoleFixture.ChatModel,
            ["AGENTRY_LONG_MODEL"] = ConsoleFixture.LongChatModel,
            ["AGENTRY_COLLECTION"] = collection.Name,
            ["AGENTRY_DOCUMENT"] = document.Name,
            ["AGENTRY_PHRASE"] = phrase,
            ["AGENTRY_URL"] = proxy.Address.ToString().TrimEnd('/'),
            ["AGENTRY_CUT_URL"] = proxy.CutUrl.ToString(),
        }, output);
        output.WriteLine($"reply in {result.GetProperty("replyMilliseconds").GetInt32()} ms, {result.GetProperty("observedLengths").GetInt32()} lengths seen; reloaded after {result.GetProperty("reopened").GetProperty("reloadedAfter").GetInt32()} ms of a reply that took {result.GetProperty("reopened").GetProperty("completedAfter").GetInt32()} ms");

        // The conversation deleted in the console is gone.
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/v1/conversations/{result.GetProperty("deletedId").GetString()}")).StatusCode);

        // The conversation the form started, with the knowledge collection chosen, holds the message and the whole reply the page showed.
        var conversation = await ReadConversationAsync(admin, result.GetProperty("conversationId").GetString()!);
        Assert.Equal((ConsoleFixture.ChatModel, "Streaming check"), (conversation.Model, conversation.Title));
        Assert.Empty(conversation.KnowledgeCollections);
        Assert.Null(conversation.ActiveReplyId);
        var (message, reply) = (conversation.Messages[0], conversation.Messages[1]);
        Assert.Equal((MessageRoles.User, result.GetProperty("question").GetString()), (message.Role, message.Content));
        var shown = result.GetProperty("reply");
        Assert.Equal((MessageRoles.Assistant, MessageStatuses.Complete), (reply.Role, reply.Status));
        Assert.Equal(reply.Id.ToString(), shown.GetProperty("id").GetString());
        Assert.Equal(reply.Content, shown.GetProperty("text").GetString());
        Assert.True(reply.OutputTokens > 0);

        // Stop cancelled the long reply, keeping what the page showed of it and the source its prompt held; the reply
        // the reload followed is stored as the page showed it.
        var stopped = result.GetProperty("stopped");
        var longOne = await ReadConversationAsync(admin, stopped.GetProperty("conversationId").GetString()!);
        Assert.Equal((ConsoleFixture.LongChatModel, "Stopped and followed"), (longOne.Model, longOne.Title));
        Assert.Equal([collection.Id], longOne.KnowledgeCollections);
        var cancelled = longOne.Messages.Single(m => m.Id.ToString() == stopped.GetProperty("id").GetString());
        Assert.Equal((MessageStatuses.Cancelled, FinishReasons.Cancelled), (cancelled.Status, cancelled.FinishReason));
        Assert.Equal(cancelled.Content, stopped.GetProperty("text").GetString());
        Assert.Contains(cancelled.Citations, c => c.DocumentId == document.Id);
        var reopened = result.GetProperty("reopened");
        var followed = longOne.Messages.Single(m => m.Id.ToString() == reopened.GetProperty("id").GetString());
        Assert.Equal(MessageStatuses.Complete, followed.Status);
        Assert.Equal(followed.Content, reopened.GetProperty("text").GetString());
        Assert.Equal(4, longOne.Messages.Count);

        // The reply whose connection was reset mid-stream is stored exactly as the page showed it in the end: no token
        // lost in the drop, none shown twice.
        var cut = result.GetProperty("cutReply");
        var afterCut = (await ReadConversationAsync(admin, cut.GetProperty("conversationId").GetString()!)).Messages[1];
        Assert.Equal((afterCut.Id.ToString(), MessageStatuses.Complete), (cut.GetProperty("id").GetString(), afterCut.Status));
        Assert.Equal(afterCut.Content, cut.GetProperty("text").GetString());
        Assert.True(afterCut.Content!.Length > cut.GetProperty("lengthAtCut").GetInt32());
    }

    private static async Task<ConversationDetailResponse> ReadConversationAsync(HttpClient client, string id) =>
        await (await client.GetAsync($"/api/v1/conversations/{id}")).ReadAsync<ConversationDetailResponse>(HttpStatusCode.OK);
}
