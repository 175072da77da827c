using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Sockets;

/// <summary><c>/api/v1/ws</c> over the in-memory server, with real inference on the tiny model.</summary>
public sealed class WebSocketApiTests(SqliteChatFixture fixture) : IClassFixture<SqliteChatFixture>
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task An_upgrade_without_valid_credentials_is_refused_with_401_and_no_socket()
    {
        var (workspace, _) = await WorkspaceClients.NewAsync(_app);
        Assert.Equal(401, await SocketClient.RefusalAsync(_app, null, workspace));
        var forged = _app.Client();
        forged.DefaultRequestHeaders.Authorization = new("Bearer", "not-a-token");
        Assert.Equal(401, await SocketClient.RefusalAsync(_app, forged, workspace));
        // API keys never travel in the URL.
        var key = await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.TasksRead);
        Assert.Equal(401, await SocketClient.RefusalAsync(_app, null, null, $"?access_token={key}"));
        // A plain GET is not a WebSocket.
        var (_, member) = await WorkspaceClients.NewAsync(_app);
        await (await member.GetAsync("/api/v1/ws")).AssertProblemAsync(HttpStatusCode.BadRequest, "websocket_required");
    }

    [Fact]
    public async Task A_task_s_events_arrive_in_order_then_live_and_a_new_connection_resumes_after_a_sequence_number()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var task = await InsertTaskWithEventsAsync(workspace, progress: 5);
        await using (var socket = await SocketClient.ConnectAsync(_app, client, workspace))
        {
            var ack = await socket.RequestAsync(new { op = "subscribe", requestId = "s1", stream = "task", id = task }, "s1");
            Assert.Equal(("ack", "subscribe"), (SocketClient.Op(ack), ack.GetProperty("for").GetString()));
            var replayed = await socket.ReceiveUntilAsync(m => m.GetProperty("seq").GetInt64() == 6);
            Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), replayed.Select(e => e.GetProperty("seq").GetInt64()));
            Assert.All(replayed, e => Assert.Equal(("event", "task", task.ToString()), (SocketClient.Op(e), e.GetProperty("stream").GetString(), e.GetProperty("id").GetString())));
            Assert.Equal(["queued", "progress", "progress", "progress", "progress", "progress"], replayed.Select(e => e.GetProperty("type").GetString()));
            Assert.Equal(3, replayed[3].GetProperty("data").GetProperty("step").GetInt32());

            // Live: cancelling the queued task over the socket ends it; its events follow, then the end of the stream.
            // (The events may come before the cancel's answer: they are read as soon as the change is written.)
            await socket.SendAsync(new { op = "cancel", requestId = "c1", taskId = task });
            var live = await socket.ReceiveUntilBothAsync(m => SocketClient.Op(m) == "end", m => SocketClient.IsAnswerTo(m, "c1"));
            Assert.Contains(live, m => SocketClient.IsAnswerTo(m, "c1") && SocketClient.Op(m) == "ack");
            var events = live.Where(m => SocketClient.Op(m) == "event").ToList();
            Assert.Equal("cancelled", events[^1].GetProperty("type").GetString());
            Assert.Equal(Enumerable.Range(7, events.Count).Select(i => (long)i), events.Select(e => e.GetProperty("seq").GetInt64()));
            Assert.Equal(events[^1].GetProperty("seq").GetInt64(), live.Single(m => SocketClient.Op(m) == "end").GetProperty("seq").GetInt64());
        }

        await using var again = await SocketClient.ConnectAsync(_app, client, workspace);
        await again.RequestAsync(new { op = "subscribe", requestId = "s2", stream = "task", id = task, after = 4 }, "s2");
        var resumed = await again.ReceiveUntilAsync(m => SocketClient.Op(m) == "end");
        Assert.Equal(5, resumed.Where(m => SocketClient.Op(m) == "event").Select(e => e.GetProperty("seq").GetInt64()).First());
        Assert.DoesNotContain(resumed, m => SocketClient.Op(m) == "event" && m.GetProperty("seq").GetInt64() <= 4);
    }

    [Fact]
    public async Task A_message_sent_over_the_socket_streams_its_reply_deltas_and_completion_and_stores_the_reply()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateConversationAsync(client, "local/tiny");
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);

        var ack = await socket.RequestAsync(new { op = "send", requestId = "m1", conversationId = conversation, content = "hello there" }, "m1");
        Assert.Equal("ack", SocketClient.Op(ack));
        Assert.True(ack.GetProperty("subscribed").GetBoolean());
        var events = await socket.ReceiveUntilAsync(m => m.GetProperty("type").GetString() is "reply.completed" or "reply.failed");
        Assert.Equal(["message", "reply.started"], events.Take(2).Select(e => e.GetProperty("type").GetString()));
        Assert.Equal(ack.GetProperty("seq").GetInt64(), events[0].GetProperty("seq").GetInt64());
        Assert.Equal("reply.completed", events[^1].GetProperty("type").GetString());
        var deltas = events.Where(e => e.GetProperty("type").GetString() == "reply.delta").ToList();
        Assert.True(deltas.Count > 1, "the reply came as several deltas");
        Assert.Equal(Enumerable.Range((int)events[0].GetProperty("seq").GetInt64(), events.Count).Select(i => (long)i), events.Select(e => e.GetProperty("seq").GetInt64()));

        var stored = await (await client.GetAsync($"/api/v1/conversations/{conversation}")).ReadAsync<ConversationDetailResponse>();
        Assert.Equal(string.Concat(deltas.Select(d => d.GetProperty("data").GetProperty("text").GetString())), stored.Messages[^1].Content);
        Assert.Equal(ack.GetProperty("replyId").GetGuid(), stored.Messages[^1].Id);
    }

    [Fact]
    public async Task Cancel_over_the_socket_stops_a_reply_being_generated()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversation = await CreateConversationAsync(client, "slow/tiny");
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);
        await socket.RequestAsync(new { op = "send", requestId = "m1", conversationId = conversation, content = "tell me a long story" }, "m1");
        await socket.ReceiveUntilAsync(m => m.GetProperty("op").GetString() == "event" && m.GetProperty("type").GetString() == "reply.delta");

        await socket.SendAsync(new { op = "cancel", requestId = "c1", conversationId = conversation });
        var rest = await socket.ReceiveUntilBothAsync(
            m => SocketClient.Op(m) == "event" && m.GetProperty("type").GetString() is "reply.cancelled" or "reply.completed", m => SocketClient.IsAnswerTo(m, "c1"));
        Assert.Contains(rest, m => SocketClient.IsAnswerTo(m, "c1") && SocketClient.Op(m) == "ack");
        Assert.Equal("reply.cancelled", rest.Last(m => SocketClient.Op(m) == "event").GetProperty("type").GetString());
        var stored = await (await client.GetAsync($"/api/v1/conversations/{conversation}")).ReadAsync<ConversationDetailResponse>();
        Assert.Equal(MessageStatuses.Cancelled, stored.Messages[^1].Status);
    }

    [Fact]
    public async Task Another_workspace_s_task_and_conversation_are_not_found_and_nothing_of_them_is_sent()
    {
        var (theirs, theirClient) = await WorkspaceClients.NewAsync(_app);
        var task = await InsertTaskWithEventsAsync(theirs, progress: 1);
        var conversation = await CreateConversationAsync(theirClient, "local/tiny");
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);

        object[] requests =
        [
            new { op = "subscribe", requestId = "1", stream = "task", id = task },
            new { op = "subscribe", requestId = "2", stream = "conversation", id = conversation },
            new { op = "send", requestId = "3", conversationId = conversation, content = "hello" },
            new { op = "cancel", requestId = "4", conversationId = conversation },
            new { op = "cancel", requestId = "5", taskId = task },
        ];
        for (var i = 0; i < requests.Length; i++)
        {
            await socket.SendAsync(requests[i]);
            var answer = await socket.ReceiveAsync();
            Assert.Equal(("error", "not_found", (i + 1).ToString()), (SocketClient.Op(answer!.Value), answer.Value.GetProperty("code").GetString(), answer.Value.GetProperty("requestId").GetString()));
        }
        var pong = await socket.RequestAsync(new { op = "ping", requestId = "p" }, "p");
        Assert.Equal("pong", SocketClient.Op(pong));
        // Their conversation got no message.
        var detail = await (await theirClient.GetAsync($"/api/v1/conversations/{conversation}")).ReadAsync<ConversationDetailResponse>();
        Assert.Empty(detail.Messages);
    }

    [Fact]
    public async Task Each_message_needs_the_scope_and_role_of_its_http_twin()
    {
        var (workspace, viewer) = await WorkspaceClients.NewAsync(_app, Roles.Viewer);
        var task = await InsertTaskWithEventsAsync(workspace, progress: 0);
        var conversation = await CreateConversationAsync(await WorkspaceClients.InAsync(_app, workspace, Roles.Member), "local/tiny");
        await using (var socket = await SocketClient.ConnectAsync(_app, viewer, workspace))
        {
            Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "subscribe", requestId = "1", stream = "conversation", id = conversation }, "1")));
            var send = await socket.RequestAsync(new { op = "send", requestId = "2", conversationId = conversation, content = "hi" }, "2");
            Assert.Equal(("error", "forbidden"), (SocketClient.Op(send), send.GetProperty("code").GetString()));
            var cancel = await socket.RequestAsync(new { op = "cancel", requestId = "3", taskId = task }, "3");
            Assert.Equal(("error", "forbidden"), (SocketClient.Op(cancel), cancel.GetProperty("code").GetString()));
        }

        var key = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.TasksRead));
        await using (var socket = await SocketClient.ConnectAsync(_app, key, null))
        {
            Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "subscribe", requestId = "1", stream = "task", id = task }, "1")));
            var chat = await socket.RequestAsync(new { op = "subscribe", requestId = "2", stream = "conversation", id = conversation }, "2");
            Assert.Equal(("error", "forbidden"), (SocketClient.Op(chat), chat.GetProperty("code").GetString()));
            Assert.Contains("'chat'", chat.GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task Malformed_and_unknown_messages_get_error_frames_and_the_socket_stays_usable()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);

        await socket.SendTextAsync("{\"op\": \"subscribe\", ");
        Assert.Equal("malformed_json", (await socket.ReceiveAsync())!.Value.GetProperty("code").GetString());
        await socket.SendTextAsync("[1, 2]");
        Assert.Equal("malformed_json", (await socket.ReceiveAsync())!.Value.GetProperty("code").GetString());
        var unknown = await socket.RequestAsync(new { op = "dance", requestId = "u" }, "u");
        Assert.Equal(("error", "unknown_op"), (SocketClient.Op(unknown), unknown.GetProperty("code").GetString()));
        var invalid = await socket.RequestAsync(new { op = "subscribe", requestId = "v", stream = "tasks", id = Guid.NewGuid() }, "v");
        Assert.Equal("validation_failed", invalid.GetProperty("code").GetString());
        Assert.True(invalid.GetProperty("errors").TryGetProperty("stream", out _));
        var after = await socket.RequestAsync(new { op = "subscribe", requestId = "a", stream = "task", id = Guid.NewGuid(), after = -1 }, "a");
        Assert.True(after.GetProperty("errors").TryGetProperty("after", out _));
        var unsubscribed = await socket.RequestAsync(new { op = "unsubscribe", requestId = "n", stream = "task", id = Guid.NewGuid() }, "n");
        Assert.Equal("not_subscribed", unsubscribed.GetProperty("code").GetString());
        await socket.Socket.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal("binary_not_supported", (await socket.ReceiveAsync())!.Value.GetProperty("code").GetString());

        var pong = await socket.RequestAsync(new { op = "ping", requestId = 7 }, "7");
        Assert.Equal(("pong", 7), (SocketClient.Op(pong), pong.GetProperty("requestId").GetInt32()));
    }

    [Fact]
    public async Task A_message_over_the_size_limit_closes_the_connection_with_1009()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);
        await socket.SendAsync(new { op = "send", conversationId = Guid.NewGuid(), content = new string('x', 70_000) });
        Assert.Null(await socket.ReceiveAsync());
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, socket.Socket.CloseStatus);
    }

    [Fact]
    public async Task Subscriptions_per_connection_are_capped_and_unsubscribe_frees_one()
    {
        var (workspace, client) = await WorkspaceClients.NewAsync(_app);
        var conversations = new List<Guid>();
        for (var i = 0; i < 33; i++)
        {
            conversations.Add(await CreateConversationAsync(client, "local/tiny"));
        }
        await using var socket = await SocketClient.ConnectAsync(_app, client, workspace);
        for (var i = 0; i < 32; i++)
        {
            Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "subscribe", requestId = $"{i}", stream = "conversation", id = conversations[i] }, $"{i}")));
        }
        var again = await socket.RequestAsync(new { op = "subscribe", requestId = "again", stream = "conversation", id = conversations[0] }, "again");
        Assert.Equal("already_subscribed", again.GetProperty("code").GetString());
        var over = await socket.RequestAsync(new { op = "subscribe", requestId = "over", stream = "conversation", id = conversations[32] }, "over");
        Assert.Equal("too_many_subscriptions", over.GetProperty("code").GetString());
        Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "unsubscribe", requestId = "u", stream = "conversation", id = conversations[0] }, "u")));
        Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "subscribe", requestId = "now", stream = "conversation", id = conversations[32] }, "now")));
    }

    [Fact]
    public async Task Revoking_the_key_a_connection_was_opened_with_closes_it_with_1008_at_its_next_message()
    {
        var (workspace, _) = await WorkspaceClients.NewAsync(_app);
        var created = await (await fixture.Client.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "socket", scopes = new[] { ApiKeyScopes.TasksRead } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        await using var socket = await SocketClient.ConnectAsync(_app, _app.KeyClient(created.GetProperty("key").GetString()!), null);
        Assert.Equal("pong", SocketClient.Op(await socket.RequestAsync(new { op = "ping", requestId = "1" }, "1")));

        (await fixture.Client.DeleteAsync($"/api/v1/workspaces/{workspace}/api-keys/{created.GetProperty("id").GetString()}")).EnsureSuccessStatusCode();
        await socket.SendAsync(new { op = "ping", requestId = "2" });
        Assert.Null(await socket.ReceiveAsync());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, socket.Socket.CloseStatus);
    }

    private static async Task<Guid> CreateConversationAsync(HttpClient client, string model) =>
        (await (await client.PostJsonAsync("/api/v1/conversations", new { model })).ReadAsync<ConversationResponse>(HttpStatusCode.Created)).Id;

    /// <summary>A queued task that no worker will run (due in a year) with <paramref name="progress"/> progress events after its implied <c>queued</c>.</summary>
    private Task<Guid> InsertTaskWithEventsAsync(Guid workspace, int progress) => SocketTestData.InsertTaskWithEventsAsync(_app, workspace, progress, 0);
}

public static class SocketTestData
{
    /// <summary>
    /// A queued task (due in a year, so no worker runs it) and an agent for it, with <paramref name="progress"/> progress events
    /// after its implied <c>queued</c>, each carrying <paramref name="padding"/> characters of data.
    /// </summary>
    public static async Task<Guid> InsertTaskWithEventsAsync(AgentryApp app, Guid workspace, int progress, int padding)
    {
        var admin = await app.AdminClientAsync();
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/v1/agents") { Content = HttpAssertions.Json(new { name = $"agent-{Guid.NewGuid():N}", kind = "tool", tool = "matrix__noop" }) };
        create.Headers.Add(Agentry.Workspaces.CurrentWorkspace.HeaderName, workspace.ToString());
        var agent = (await (await admin.SendAsync(create)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var task = await app.InsertTaskAsync(workspace, agent);
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var text = new string('p', padding);
        for (var step = 1; step <= progress; step++)
        {
            db.TaskEvents.Add(new TaskEvent
            {
                TaskId = task, Seq = step + 1, WorkspaceId = workspace, Type = TaskEventTypes.Progress, At = DateTime.UtcNow,
                Data = JsonSerializer.Serialize(new { step, text }),
            });
        }
        await db.SaveChangesAsync();
        await db.Tasks.Where(t => t.Id == task).ExecuteUpdateAsync(s => s.SetProperty(t => t.LastEventSeq, progress + 1));
        return task;
    }
}
