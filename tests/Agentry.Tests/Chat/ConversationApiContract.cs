using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Chat;

/// <summary>Conversations with real inference on the tiny model, the same on every storage provider.</summary>
public abstract class ConversationApiContract(StorageFixture fixture, PromptRecorder recorder)
{
    private const string Url = "/api/v1/conversations";
    private readonly AgentryApp _app = fixture.App;

    private static async Task<ConversationResponse> CreateAsync(HttpClient client, string model = "local/tiny", string? systemPrompt = null) =>
        await (await client.PostJsonAsync(Url, new { model, systemPrompt, title = "test" })).ReadAsync<ConversationResponse>(HttpStatusCode.Created);

    private static async Task<ConversationDetailResponse> GetAsync(HttpClient client, Guid id) =>
        await (await client.GetAsync($"{Url}/{id}")).ReadAsync<ConversationDetailResponse>();

    [Fact]
    public async Task A_hundred_message_conversation_sends_its_history_trimmed_to_the_window_and_stores_both_sides()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client, "spy/tiny", systemPrompt: "you are a tiny assistant");

        for (var i = 1; i <= 50; i++)
        {
            var exchange = await (await client.PostJsonAsync($"{Url}/{conversation.Id}/messages", new { content = $"question {i} for the quick brown fox" }))
                .ReadAsync<ExchangeResponse>();
            Assert.Equal(MessageStatuses.Complete, exchange.Reply.Status);
            // The prompt (exact llama.cpp token count) fits the 256-token window with room left for the answer.
            Assert.InRange(exchange.Reply.InputTokens!.Value, 1, TinyGguf.ContextLength - ChatSettings.MaxReplyTokens);
        }

        var stored = await GetAsync(client, conversation.Id);
        Assert.Equal(100, stored.Messages.Count);
        Assert.Equal(Enumerable.Range(1, 100), stored.Messages.Select(m => m.Position));
        Assert.All(stored.Messages.Where((_, i) => i % 2 == 0), m => Assert.Equal((MessageRoles.User, MessageStatuses.Complete), (m.Role, m.Status)));
        Assert.All(stored.Messages.Where((_, i) => i % 2 == 1), m => Assert.True(m.Role == MessageRoles.Assistant && m.Content.Length > 0 && m.OutputTokens > 0));
        Assert.Equal("question 50 for the quick brown fox", stored.Messages[98].Content);

        var sent = recorder.Prompts.Last(p => p[^1].Text == "question 50 for the quick brown fox");
        Assert.Equal((ChatRole.System, "you are a tiny assistant"), (sent[0].Role, sent[0].Text));
        var history = sent.Skip(1).ToList();
        Assert.InRange(history.Count, 3, 40); // trimmed: far fewer than the 99 messages before the reply
        // The newest messages, in order, with nothing skipped in between: the oldest were dropped first.
        var newest = stored.Messages.Take(99).TakeLast(history.Count).ToList();
        Assert.Equal(newest.Select(m => (m.Role, m.Content)), history.Select(m => (m.Role.Value, m.Text)));
    }

    [Fact]
    public async Task A_streamed_reply_is_several_deltas_that_make_up_the_stored_reply()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client);

        using var request = Sse.Request(HttpMethod.Post, $"{Url}/{conversation.Id}/messages", new { content = "hello world" });
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = await Sse.ReadAsync(response);

        Assert.Equal(["message", "reply.started"], events.Take(2).Select(e => e.Type));
        Assert.True(events.Count(e => e.Type == "reply.delta") >= 3, "expected several deltas");
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        var final = events[^1];
        Assert.Equal("reply.completed", final.Type);
        var stored = await GetAsync(client, conversation.Id);
        var reply = stored.Messages[1];
        Assert.Equal(reply.Id, final.Data.GetProperty("messageId").GetGuid());
        Assert.Equal(reply.OutputTokens, final.Data.GetProperty("outputTokens").GetInt32());
        Assert.True(final.Data.GetProperty("inputTokens").GetInt32() > 0);
        Assert.False(string.IsNullOrEmpty(final.Data.GetProperty("finishReason").GetString()));
        Assert.Equal(reply.Content, Sse.Text(events));
        Assert.Equal((MessageStatuses.Complete, "hello world"), (reply.Status, stored.Messages[0].Content));
    }

    [Fact]
    public async Task A_client_that_disconnects_leaves_a_complete_reply_and_resuming_after_its_last_event_sees_the_rest_once_in_order()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client, "slow/tiny");

        List<SseEvent> before;
        using (var request = Sse.Request(HttpMethod.Post, $"{Url}/{conversation.Id}/messages", new { content = "hello world" }))
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            var deltas = 0;
            before = await Sse.ReadAsync(response, e => e.Type == "reply.delta" && ++deltas == 3);
        }
        Assert.Equal("reply.delta", before[^1].Type);

        using var resume = Sse.Request(HttpMethod.Get, $"{Url}/{conversation.Id}/events", lastEventId: before[^1].Id.ToString());
        var after = await Sse.ReadAsync(await client.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead));

        Assert.Equal(Enumerable.Range(1, before.Count + after.Count).Select(i => (long)i), before.Concat(after).Select(e => e.Id));
        Assert.Equal("reply.completed", after[^1].Type);
        var reply = (await GetAsync(client, conversation.Id)).Messages[1];
        Assert.Equal(MessageStatuses.Complete, reply.Status);
        Assert.Equal(reply.Content, Sse.Text(before) + Sse.Text(after));
        var log = await (await client.GetAsync($"{Url}/{conversation.Id}/events")).ReadAsync<ConversationEventPage>();
        Assert.True(log.Final);
        Assert.Equal(before.Concat(after).Select(e => e.Id), log.Items.Select(e => e.Seq));
    }

    [Fact]
    public async Task Cancel_stops_the_reply_within_a_second_and_stores_what_it_wrote_marked_cancelled()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client, "slow/tiny");
        using var request = Sse.Request(HttpMethod.Post, $"{Url}/{conversation.Id}/messages", new { content = "hello world" });
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reading = Sse.ReadAsync(response);
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await GetAsync(client, conversation.Id)).LastEventSeq >= 3, TimeSpan.FromSeconds(10)), "no delta was written");

        var clock = Stopwatch.StartNew();
        var cancel = await client.PostAsync($"{Url}/{conversation.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await GetAsync(client, conversation.Id)).Messages[1].Status != MessageStatuses.Generating, TimeSpan.FromSeconds(1)));
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"cancelling took {clock.Elapsed}");
        var reply = (await GetAsync(client, conversation.Id)).Messages[1];
        Assert.Equal((MessageStatuses.Cancelled, FinishReasons.Cancelled), (reply.Status, reply.FinishReason));
        var events = await reading;
        Assert.Equal("reply.cancelled", events[^1].Type);
        Assert.Equal(reply.Content, Sse.Text(events));
        Assert.True(reply.Content.Length > 0);
        await (await client.PostAsync($"{Url}/{conversation.Id}/cancel", null)).AssertProblemAsync(HttpStatusCode.Conflict, "no_active_reply");
    }

    [Fact]
    public async Task A_reply_whose_node_died_is_failed_by_the_sweeper_keeping_its_text()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client);
        var replyId = Guid.CreateVersion7();
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            // What a node leaves behind when it is killed mid-reply: a generating reply, two deltas, a lease that lapsed.
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = DateTime.UtcNow;
            var row = await db.Conversations.FindAsync(conversation.Id);
            (row!.ActiveReplyId, row.LastEventSeq, row.MessageCount) = (replyId, 4, 2);
            db.ConversationMessages.AddRange(
                new ConversationMessage { Id = Guid.CreateVersion7(), ConversationId = conversation.Id, Position = 1, Role = "user", Content = "hi", Status = "complete", CreatedAt = now },
                new ConversationMessage { Id = replyId, ConversationId = conversation.Id, Position = 2, Role = "assistant", Status = "generating", StartSeq = 2, LeaseUntil = now.AddSeconds(-1), CreatedAt = now });
            db.ConversationEvents.AddRange(
                Event(conversation.Id, 1, "message", new { text = "hi" }), Event(conversation.Id, 2, "reply.started", new { messageId = replyId }),
                Event(conversation.Id, 3, "reply.delta", new { messageId = replyId, text = "the quick" }),
                Event(conversation.Id, 4, "reply.delta", new { messageId = replyId, text = " fox" }));
            await db.SaveChangesAsync();
        }

        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await GetAsync(client, conversation.Id)).ActiveReplyId is null, TimeSpan.FromSeconds(10)), "the reply was never swept");
        var reply = (await GetAsync(client, conversation.Id)).Messages[1];
        Assert.Equal((MessageStatuses.Failed, "the quick fox"), (reply.Status, reply.Content));
        Assert.Contains("stopped", reply.Error);
        var log = await (await client.GetAsync($"{Url}/{conversation.Id}/events?after=4")).ReadAsync<ConversationEventPage>();
        Assert.Equal((5L, "reply.failed"), (Assert.Single(log.Items).Seq, log.Items[0].Type));
        // The conversation goes on.
        var next = await (await client.PostJsonAsync($"{Url}/{conversation.Id}/messages", new { content = "hello" })).ReadAsync<ExchangeResponse>();
        Assert.Equal((3, MessageStatuses.Complete), (next.Message.Position, next.Reply.Status));
        _ = workspace;
    }

    private static ConversationEvent Event(Guid conversation, long seq, string type, object data) =>
        new() { ConversationId = conversation, Seq = seq, Type = type, At = DateTime.UtcNow, Data = JsonSerializer.Serialize(data, JsonSerializerOptions.Web) };

    [Fact]
    public async Task A_conversation_is_renamed_in_its_own_workspace_only_and_an_empty_title_clears_it()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var (_, outsider) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client);

        var renamed = await (await client.PatchAsync($"{Url}/{conversation.Id}", HttpAssertions.Json(new { title = "  Trip plans  " }))).ReadAsync<ConversationResponse>();
        Assert.Equal(("Trip plans", conversation.Model, conversation.CreatedAt), (renamed.Title, renamed.Model, renamed.CreatedAt));
        Assert.True(renamed.UpdatedAt >= conversation.UpdatedAt);
        Assert.Equal("Trip plans", (await GetAsync(client, conversation.Id)).Title);

        var missing = await (await client.PatchAsync($"{Url}/{conversation.Id}", HttpAssertions.Json(new { }))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(missing.GetProperty("errors").TryGetProperty("title", out _));
        var tooLong = await (await client.PatchAsync($"{Url}/{conversation.Id}", HttpAssertions.Json(new { title = new string('t', 201) }))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(tooLong.GetProperty("errors").TryGetProperty("title", out _));
        await (await outsider.PatchAsync($"{Url}/{conversation.Id}", HttpAssertions.Json(new { title = "mine" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Equal("Trip plans", (await GetAsync(client, conversation.Id)).Title);

        var cleared = await (await client.PatchAsync($"{Url}/{conversation.Id}", HttpAssertions.Json(new { title = " " }))).ReadAsync<ConversationResponse>();
        Assert.Null(cleared.Title);
        await (await client.PatchAsync($"{Url}/{Guid.NewGuid()}", HttpAssertions.Json(new { title = "x" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Conversations_list_newest_first_a_page_at_a_time_and_delete_for_good()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await CreateAsync(client)).Id);
        }

        var first = await (await client.GetAsync($"{Url}?limit=2")).ReadAsync<Page<ConversationResponse>>();
        var second = await (await client.GetAsync($"{Url}?limit=2&cursor={first.NextCursor}")).ReadAsync<Page<ConversationResponse>>();
        Assert.Equal(ids.AsEnumerable().Reverse(), first.Items.Concat(second.Items).Select(c => c.Id));
        Assert.Null(second.NextCursor);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{ids[0]}")).StatusCode);
        await (await client.GetAsync($"{Url}/{ids[0]}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Another_workspace_sees_404_a_viewer_cannot_post_and_a_key_needs_the_chat_scope()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client);
        var (_, stranger) = await WorkspaceClients.NewAsync(_app, Roles.Admin);
        var viewer = await WorkspaceClients.InAsync(_app, workspace, Roles.Viewer);
        var tasksKey = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.TasksWrite));
        var chatKey = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.Chat));

        await (await stranger.GetAsync($"{Url}/{conversation.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.PostJsonAsync($"{Url}/{conversation.Id}/messages", new { content = "hi" })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.DoesNotContain(conversation.Id, (await (await stranger.GetAsync(Url)).ReadAsync<Page<ConversationResponse>>()).Items.Select(c => c.Id));
        await (await viewer.PostJsonAsync($"{Url}/{conversation.Id}/messages", new { content = "hi" })).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(conversation.Id, (await GetAsync(viewer, conversation.Id)).Id);
        await (await tasksKey.GetAsync($"{Url}/{conversation.Id}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var exchange = await (await chatKey.PostJsonAsync($"{Url}/{conversation.Id}/messages", new { content = "hi" })).ReadAsync<ExchangeResponse>();
        Assert.Equal(MessageStatuses.Complete, exchange.Reply.Status);
    }

    [Fact]
    public async Task Bad_input_is_a_clear_problem()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateAsync(client);
        var messages = $"{Url}/{conversation.Id}/messages";

        await AssertFieldAsync(await client.PostJsonAsync(messages, new { content = "" }), "content");
        await AssertFieldAsync(await client.PostJsonAsync(messages, new { content = "   " }), "content");
        await AssertFieldAsync(await client.PostJsonAsync(messages, new { content = new string('a', 2001) }), "content");
        await AssertFieldAsync(await client.PostJsonAsync(messages, new { content = string.Join(' ', Enumerable.Repeat("hello", 300)) }), "content");
        await AssertFieldAsync(await client.PostJsonAsync(Url, new { title = "no model" }), "model");
        await AssertFieldAsync(await client.PostJsonAsync("/api/v1/chat", new { model = "local/tiny" }), "message");
        await (await client.PostJsonAsync(Url, new { model = "local/nope" })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "unknown_model");
        await (await client.PostJsonAsync(Url, new { model = "nothing" })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "unknown_model");
        var down = await client.PostJsonAsync(Url, new { model = "down/llama3" });
        await down.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.NotNull(down.Headers.RetryAfter);
        var tool = await (await client.PostJsonAsync("/api/v1/agents", new { name = "t", kind = "tool", tool = "matrix__noop" })).ReadAsync<JsonElement>(HttpStatusCode.Created);
        await (await client.PostJsonAsync(Url, new { agentId = tool.GetProperty("id").GetGuid() })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "agent_not_llm");
        await (await client.PostJsonAsync(Url, new { agentId = Guid.CreateVersion7() })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "unknown_agent");
        await (await client.PostJsonAsync($"{Url}/{Guid.CreateVersion7()}/messages", new { content = "hi" })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.GetAsync($"{Url}?sort=title")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        using var badResume = new HttpRequestMessage(HttpMethod.Get, $"{Url}/{conversation.Id}/events");
        badResume.Headers.Add("Last-Event-ID", "x");
        await (await client.SendAsync(badResume)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Empty((await GetAsync(client, conversation.Id)).Messages);
        _ = workspace;
    }

    private static async Task AssertFieldAsync(HttpResponseMessage response, string field)
    {
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"no error for {field}: {problem}");
    }

    [Fact]
    public async Task An_llm_agent_lends_its_model_and_system_prompt_and_the_one_shot_chat_continues_a_conversation()
    {
        var (_, client) = await WorkspaceClients.NewAsync(_app);
        var agent = await (await client.PostJsonAsync("/api/v1/agents", new { name = "helper", kind = "llm", model = "spy/tiny", systemPrompt = "you answer questions" }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);

        var first = await (await client.PostJsonAsync("/api/v1/chat", new { message = "hello agent", agentId = agent.GetProperty("id").GetGuid() })).ReadAsync<ExchangeResponse>();
        Assert.Equal("you answer questions", recorder.Prompts.Last(p => p[^1].Text == "hello agent")[0].Text);
        var second = await (await client.PostJsonAsync("/api/v1/chat", new { message = "and again", conversationId = first.ConversationId })).ReadAsync<ExchangeResponse>();

        Assert.Equal(first.ConversationId, second.ConversationId);
        var stored = await GetAsync(client, first.ConversationId);
        Assert.Equal(("spy/tiny", 4), (stored.Model, stored.Messages.Count));
        Assert.Equal([first.Message.Id, first.Reply.Id, second.Message.Id, second.Reply.Id], stored.Messages.Select(m => m.Id));

        using var streamed = await client.PostJsonAsync("/api/v1/chat", new { message = "stream it", model = "local/tiny", stream = true });
        var events = await Sse.ReadAsync(streamed);
        Assert.Equal("reply.completed", events[^1].Type);
    }
}

public sealed class SqliteConversationApiTests(SqliteChatFixture fixture) : ConversationApiContract(fixture, fixture.Recorder), IClassFixture<SqliteChatFixture>;

public sealed class PostgresConversationApiTests(PostgresChatFixture fixture) : ConversationApiContract(fixture, fixture.Recorder), IClassFixture<PostgresChatFixture>;
