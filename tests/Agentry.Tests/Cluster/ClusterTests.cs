using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Tasks;

namespace Agentry.Tests.Cluster;

/// <summary>
/// The scaled-out topology on one machine, as <c>scripts/cluster.sh</c> starts it: two API nodes behind nginx and two
/// workers on PostgreSQL, Redis, RabbitMQ and ChromaDB. Nodes are killed with SIGKILL while clients work through the
/// balancer; each test first brings back whatever an earlier one killed.
/// </summary>
public sealed class ClusterTests(LocalCluster cluster, ITestOutputHelper output) : IClassFixture<LocalCluster>
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Tasks_and_chats_from_clients_that_retry_survive_killing_an_api_node_and_a_worker_behind_the_balancer()
    {
        await cluster.EnsureUpAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        var client = cluster.Client(cluster.Balancer, await WorkspaceKeyAsync());
        var agent = (await (await client.PostJsonAsync("/api/v1/agents", new { name = "receiver", kind = "webhook", webhook = new { url = receiver.Url("effect") } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var conversation = (await (await client.PostJsonAsync("/api/v1/conversations", new { model = "local/tiny" }))
            .ReadAsync<ConversationResponse>(HttpStatusCode.Created)).Id;

        const int taskCount = 300, chatCount = 30;
        var accepted = new ConcurrentDictionary<int, Guid>();
        var retries = 0;
        var submitting = Task.Run(async () =>
        {
            for (var i = 0; i < taskCount; i++)
            {
                var n = i;
                accepted[n] = await RetryingAsync(async () =>
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/tasks") { Content = HttpAssertions.Json(new { agentId = agent, input = new { n }, maxAttempts = 50 }) };
                    request.Headers.Add("Idempotency-Key", $"task-{n}");
                    using var response = await client.SendAsync(request);
                    return response.StatusCode == HttpStatusCode.Accepted ? (await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id : (Guid?)null;
                }, () => Interlocked.Increment(ref retries));
                await Task.Delay(15);
            }
        });
        var chatting = Task.Run(async () =>
        {
            for (var j = 0; j < chatCount; j++)
            {
                var text = $"message {j}";
                await RetryingAsync(async () =>
                {
                    using var response = await client.PostJsonAsync($"/api/v1/conversations/{conversation}/messages", new { content = text });
                    return response.StatusCode == HttpStatusCode.OK && (await response.ReadAsync<ExchangeResponse>()).Reply.Status == "complete" ? true : (bool?)null;
                }, () => Interlocked.Increment(ref retries));
            }
        });

        // Kill an API node and a worker while both clients are in full flow.
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(accepted.Count >= taskCount / 4), Patience), "the submissions never got going");
        await cluster.KillAsync("api-1");
        await cluster.KillAsync("worker-1");
        await Task.WhenAll(submitting, chatting).WaitAsync(Patience * 2);
        output.WriteLine($"{retries} retried requests");

        // One task per idempotency key, each done, each delivered at least once.
        Assert.Equal(taskCount, accepted.Values.Distinct().Count());
        foreach (var id in accepted.Values)
        {
            Assert.True(await HttpAssertions.EventuallyAsync(
                async () => (await (await client.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>()).Status == AgentTaskStatus.Succeeded, Patience),
                $"task {id} never succeeded");
        }
        var delivered = receiver.CallsTo("effect").Select(c => JsonDocument.Parse(c.Body).RootElement.GetProperty("taskId").GetGuid()).ToHashSet();
        Assert.Subset(delivered, accepted.Values.ToHashSet());

        // Every message the client sent has a complete reply right after it (a retried one may appear twice).
        var messages = (await (await client.GetAsync($"/api/v1/conversations/{conversation}")).ReadAsync<ConversationDetailResponse>()).Messages;
        for (var j = 0; j < chatCount; j++)
        {
            var text = $"message {j}";
            Assert.Contains(messages.Zip(messages.Skip(1)), p => p.First.Role == "user" && p.First.Content == text && p.Second is { Role: "assistant", Status: "complete" });
        }
    }

    [Fact]
    public async Task A_task_event_stream_cut_by_killing_its_api_node_resumes_through_the_other_node_without_missing_an_event()
    {
        await cluster.EnsureUpAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        var key = await WorkspaceKeyAsync();
        var balancer = cluster.Client(cluster.Balancer, key);
        // The webhook fails six times, so the task lives through seven attempts and their events.
        var flaky = receiver.Url("flaky", new Reply(500), new Reply(500), new Reply(500), new Reply(500), new Reply(500), new Reply(500), new Reply(200, """{"ok":true}"""));
        var agent = (await (await balancer.PostJsonAsync("/api/v1/agents", new { name = "flaky", kind = "webhook", webhook = new { url = flaky } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var id = (await (await balancer.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { }, maxAttempts = 10 }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

        // Read the first events from api-1 itself, then kill it under the open stream.
        var seen = new List<(long Seq, string Type)>();
        using (var first = cluster.Client(cluster.Node("api-1"), key))
        {
            using var response = await OpenStreamAsync(first, id, lastEventId: null);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            await ReadEventsAsync(reader, seen, stopAfter: 2);
            await cluster.KillAsync("api-1");
            // Whatever was still in flight on the dead connection is read to its end (a cut, not a clean close).
            try
            {
                await ReadEventsAsync(reader, seen, stopAfter: int.MaxValue);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                output.WriteLine($"the stream broke: {ex.Message}");
            }
        }
        Assert.True(seen.Count >= 2, "no events before the kill");

        // Resume through the balancer (only api-2 is left) from the last event received.
        using (var response = await OpenStreamAsync(balancer, id, lastEventId: seen[^1].Seq))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            await ReadEventsAsync(reader, seen, stopAfter: int.MaxValue).WaitAsync(Patience);
        }

        var log = (await (await balancer.GetAsync($"/api/v1/tasks/{id}/events")).ReadAsync<TaskEventPage>()).Items;
        Assert.Equal(log.Select(e => (e.Seq, e.Type)), seen);
        Assert.Equal(Enumerable.Range(1, seen.Count).Select(i => (long)i), seen.Select(e => e.Seq));
        Assert.Equal(7, seen.Count(e => e.Type == "started"));
        Assert.Equal("succeeded", seen[^1].Type);
    }

    [Fact]
    public async Task A_change_or_a_revocation_made_on_one_api_node_is_seen_by_the_other_at_once()
    {
        await cluster.EnsureUpAsync();
        var admin = await AdminTokenAsync(cluster.Node("api-1"));
        var workspace = await WorkspaceAsync(cluster.Client(cluster.Node("api-1"), admin));
        var key = await AgentryApp.CreateApiKeyAsync(cluster.Client(cluster.Node("api-1"), admin), workspace, "admin");
        var one = cluster.Client(cluster.Node("api-1"), key);
        var two = cluster.Client(cluster.Node("api-2"), key);

        // An agent read on api-2 (and so cached there), changed on api-1, reads as changed on api-2 straight away.
        var agent = (await (await one.PostJsonAsync("/api/v1/agents", new { name = "cached", kind = "webhook", webhook = new { url = "https://example.com/hook" }, description = "first" }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        Assert.Equal("first", (await (await two.GetAsync($"/api/v1/agents/{agent}")).ReadAsync<JsonElement>()).GetProperty("description").GetString());
        Assert.Equal("first", (await (await two.GetAsync($"/api/v1/agents/{agent}")).ReadAsync<JsonElement>()).GetProperty("description").GetString());
        await (await one.PatchAsync($"/api/v1/agents/{agent}", HttpAssertions.Json(new { description = "second" }))).ReadAsync<JsonElement>();
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await (await two.GetAsync($"/api/v1/agents/{agent}")).ReadAsync<JsonElement>()).GetProperty("description").GetString() == "second",
            TimeSpan.FromSeconds(1)), "api-2 still served the old agent a second after the change");

        // An API key revoked on api-1 is refused by api-2 within a second.
        var keyId = (await (await cluster.Client(cluster.Node("api-1"), admin).GetAsync($"/api/v1/workspaces/{workspace}/api-keys")).ReadAsync<JsonElement>())
            .GetProperty("items")[0].GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await two.GetAsync("/api/v1/agents")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await cluster.Client(cluster.Node("api-1"), admin).DeleteAsync($"/api/v1/workspaces/{workspace}/api-keys/{keyId}")).StatusCode);
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await two.GetAsync("/api/v1/agents")).StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(1)),
            "api-2 still took the revoked key a second later");

        // An access token revoked on api-2 is refused by api-1 within a second.
        var token = await AdminTokenAsync(cluster.Node("api-1"));
        using var onOne = cluster.Client(cluster.Node("api-1"), token);
        Assert.Equal(HttpStatusCode.OK, (await onOne.GetAsync("/api/v1/me")).StatusCode);
        using var revoke = await cluster.Client(cluster.Node("api-2")).PostAsync("/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "agentry-cli", ["token"] = token, ["token_type_hint"] = "access_token",
        }));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await onOne.GetAsync("/api/v1/me")).StatusCode == HttpStatusCode.Unauthorized, TimeSpan.FromSeconds(1)),
            "api-1 still took the revoked token a second later");
    }

    /// <summary>An API key with the <c>admin</c> scope in a new workspace, made through the balancer.</summary>
    private async Task<string> WorkspaceKeyAsync()
    {
        var admin = cluster.Client(cluster.Balancer, await AdminTokenAsync(cluster.Balancer));
        return await AgentryApp.CreateApiKeyAsync(admin, await WorkspaceAsync(admin), "admin");
    }

    private async Task<string> AdminTokenAsync(Uri node) =>
        (await AgentryApp.RequestTokensAsync(cluster.Client(node), AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;

    private static async Task<Guid> WorkspaceAsync(HttpClient admin)
    {
        var slug = $"ws-{Guid.NewGuid():N}"[..20];
        return (await (await admin.PostJsonAsync("/api/v1/workspaces", new { name = slug, slug })).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
    }

    /// <summary>
    /// What a client that retries does: the call again after a transport error, a 5xx from the balancer or a 409 (a reply
    /// of a dead node not yet swept), until it gives a value; each retry is counted.
    /// </summary>
    private static async Task<T> RetryingAsync<T>(Func<Task<T?>> call, Action retried) where T : struct
    {
        for (var attempt = 0; ; attempt++)
        {
            Assert.True(attempt < 200, "the call never went through");
            try
            {
                if (await call() is { } value)
                {
                    return value;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException or Xunit.Sdk.XunitException)
            {
            }
            retried();
            await Task.Delay(250);
        }
    }

    private static async Task<HttpResponseMessage> OpenStreamAsync(HttpClient client, Guid task, long? lastEventId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/tasks/{task}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } last)
        {
            request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return response;
    }

    /// <summary>Reads whole SSE events (id and type) into <paramref name="seen"/> until <paramref name="stopAfter"/> or the end of the stream.</summary>
    private static async Task ReadEventsAsync(StreamReader reader, List<(long Seq, string Type)> seen, int stopAfter)
    {
        long? id = null;
        string? type = null;
        for (var read = 0; read < stopAfter && await reader.ReadLineAsync() is { } line;)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.Length == 0 && id is { } seq && type is not null)
            {
                seen.Add((seq, type));
                (id, type) = (null, null);
                read++;
            }
        }
    }
}
