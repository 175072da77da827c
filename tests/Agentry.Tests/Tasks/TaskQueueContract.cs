using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// What every queue provider promises (ARCHITECTURE.md, "The durability promise"): at-least-once, priority
/// then run-time order, back-off that never shrinks, dead after maxAttempts, timeouts, cancellation that
/// reaches the handler, per-workspace fairness, and an event log that a reader can resume. The handler is
/// <see cref="ScriptedTaskHandler"/>, so the tests check what the queue did. Each test works in workspaces of its own.
/// </summary>
public abstract class TaskQueueContract(ITaskQueueFixture fixture)
{
    private const string Url = "/api/v1/tasks";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly AgentryApp _app = fixture.App;
    private readonly ScriptedTaskHandler _handler = fixture.Handler;

    [Fact]
    public async Task A_submitted_task_answers_202_with_location_runs_and_succeeds_with_its_result_and_events()
    {
        var (client, agent) = await WorkspaceAsync();
        var response = await client.PostJsonAsync(Url, new { agentId = agent, input = new { mode = "ok", n = 7 }, priority = 3 });

        var accepted = await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        Assert.Equal($"{Url}/{accepted.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal((AgentTaskStatus.Queued, 3, 1, 0), (accepted.Status, accepted.Priority, accepted.AgentVersion, accepted.Attempts));
        var done = await FinalAsync(client, accepted.Id);
        Assert.Equal((AgentTaskStatus.Succeeded, 1, "completed"), (done.Status, done.Attempts, done.Reason));
        Assert.Equal(7, done.Result!.Value.GetProperty("echo").GetProperty("n").GetInt32());
        var events = await EventsAsync(client, accepted.Id);
        Assert.Equal(["queued", "started", "succeeded"], events.Select(e => e.Type));
        Assert.Equal([1L, 2, 3], events.Select(e => e.Seq));
    }

    [Fact]
    public async Task Bad_submissions_are_4xx_naming_what_is_wrong()
    {
        var (client, agent) = await WorkspaceAsync();
        (await (await client.PostJsonAsync(Url, new { input = new { } })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
        (await (await client.PostJsonAsync(Url, new { agentId = agent, priority = 10 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("priority");
        (await (await client.PostJsonAsync(Url, new { agentId = Guid.CreateVersion7() })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
        var llm = await (await client.PostJsonAsync("/api/v1/agents", new { name = "thinker", kind = "llm", model = "m" })).ReadAsync<JsonElement>(HttpStatusCode.Created);
        await (await client.PostJsonAsync(Url, new { agentId = llm.GetProperty("id").GetGuid() })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "agent_not_runnable");
        await (await client.PostAsync(Url, new StringContent("{\"agentId\":", System.Text.Encoding.UTF8, "application/json"))).AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        await (await client.GetAsync($"{Url}/{Guid.CreateVersion7()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task The_same_idempotency_key_returns_the_original_a_different_body_is_422()
    {
        var (client, agent) = await WorkspaceAsync();
        var body = new { agentId = agent, input = new { mode = "ok" } };
        var first = await (await PostAsync(client, body, "key-1")).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        var again = await PostAsync(client, body, "key-1");

        Assert.Equal(first.Id, (await again.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        await (await PostAsync(client, new { agentId = agent, input = new { mode = "other" } }, "key-1")).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
    }

    [Fact]
    public async Task A_thousand_keys_each_posted_ten_times_at_once_create_exactly_a_thousand_tasks()
    {
        var (client, agent) = await WorkspaceAsync();
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentBag<Guid>>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1_000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (k, _) =>
        {
            var body = new { agentId = agent, input = new { mode = "ok", k }, runAt = DateTime.UtcNow.AddHours(1) };
            var posts = Enumerable.Range(0, 10).Select(_ => PostAsync(client, body, $"k-{k}"));
            foreach (var response in await Task.WhenAll(posts))
            {
                ids.GetOrAdd($"k-{k}", _ => []).Add((await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id);
            }
        });

        Assert.All(ids.Values, same => Assert.Single(same.Distinct()));
        Assert.Equal(1_000, (await ListAllAsync(client, "")).Count);
    }

    [Fact]
    public async Task A_batch_is_one_transaction_with_a_result_per_item()
    {
        var (client, agent) = await WorkspaceAsync();
        var tasks = Enumerable.Range(0, 1_000).Select(i => new { agentId = agent, input = new { i }, runAt = DateTime.UtcNow.AddHours(1), idempotencyKey = i == 0 ? "b-0" : null }).ToList();

        var batch = await (await client.PostJsonAsync($"{Url}/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        Assert.Equal(1_000, batch.Items.Count);
        Assert.All(batch.Items, (item, i) => Assert.Equal((i, true), (item.Index, item.Created)));
        var repeat = await (await client.PostJsonAsync($"{Url}/batch", new { tasks = new[] { tasks[0] } })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        Assert.Equal((false, batch.Items[0].Task.Id), (repeat.Items[0].Created, repeat.Items[0].Task.Id));

        var bad = tasks.Take(5).Select((t, i) => new { t.agentId, priority = i == 3 ? 42 : 1 }).ToList();
        var errors = (await (await client.PostJsonAsync($"{Url}/batch", new { tasks = bad })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors");
        Assert.True(errors.TryGetProperty("tasks[3].priority", out _), errors.ToString());
        var tooMany = Enumerable.Range(0, 1_001).Select(_ => new { agentId = agent }).ToList();
        await (await client.PostJsonAsync($"{Url}/batch", new { tasks = tooMany })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(1_000, (await ListAllAsync(client, "")).Count);
    }

    [Fact]
    public async Task Lists_filter_and_page_without_repeats_or_gaps_while_tasks_arrive_and_refuse_unlisted_sorts()
    {
        var (client, agent) = await WorkspaceAsync();
        var later = DateTime.UtcNow.AddHours(1);
        var before = await SubmitBatchAsync(client, agent, 45, later);
        foreach (var sort in new[] { "name;DROP TABLE tasks", "priority", "Id", "-createdAt;--" })
        {
            (await (await client.GetAsync($"{Url}?sort={Uri.EscapeDataString(sort)}")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
                .GetProperty("errors").GetProperty("sort");
        }
        await (await client.GetAsync($"{Url}?status=bogus")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        foreach (var sort in new[] { "-createdAt", "createdAt" })
        {
            var seen = new List<Guid>();
            string? cursor = null;
            do
            {
                var page = await (await client.GetAsync($"{Url}?limit=7&sort={sort}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}"))).ReadAsync<Page<TaskResponse>>();
                seen.AddRange(page.Items.Select(t => t.Id));
                cursor = page.NextCursor;
                await SubmitBatchAsync(client, agent, 3, later); // arrivals during paging
            }
            while (cursor is not null);
            Assert.Equal(seen.Count, seen.Distinct().Count());
            Assert.Subset(seen.ToHashSet(), before.ToHashSet());
        }
        var queued = await ListAllAsync(client, $"status=queued&agentId={agent}");
        Assert.Superset(before.ToHashSet(), queued.Select(t => t.Id).ToHashSet());
        Assert.Empty(await ListAllAsync(client, "status=dead"));
        Assert.Empty(await ListAllAsync(client, $"createdAfter={Uri.EscapeDataString(DateTime.UtcNow.AddMinutes(1).ToString("o"))}"));
    }

    [Fact]
    public async Task Always_failing_tasks_end_dead_after_exactly_max_attempts_with_back_off_gaps_that_never_shrink()
    {
        var (client, agent) = await WorkspaceAsync();
        var ids = await SubmitBatchAsync(client, agent, 100, null, new { mode = "fail" }, maxAttempts: 4);

        foreach (var id in ids)
        {
            var dead = await FinalAsync(client, id);
            Assert.Equal((AgentTaskStatus.Dead, 4), (dead.Status, dead.Attempts));
            Assert.Contains("failing on purpose (attempt 4)", dead.LastError);
            Assert.StartsWith("Failed after 4 attempts", dead.Reason);
            var events = await EventsAsync(client, id);
            Assert.Equal(4, events.Count(e => e.Type == "started"));
            var delays = events.Where(e => e.Type == "retrying").Select(e => e.Data!.Value.GetProperty("delayMs").GetInt64()).ToList();
            Assert.Equal(3, delays.Count);
            Assert.True(delays.Zip(delays.Skip(1)).All(p => p.First <= p.Second), $"back-off shrank: {string.Join(", ", delays)}");
            // No attempt starts before its back-off is over.
            var starts = events.Where(e => e.Type == "started").Select(e => e.At).ToList();
            var retries = events.Where(e => e.Type == "retrying").Select(e => e.Data!.Value.GetProperty("runAt").GetDateTime()).ToList();
            Assert.All(retries.Zip(starts.Skip(1)), p => Assert.True(p.Second >= p.First.AddMilliseconds(-1), $"attempt started at {p.Second:o}, before {p.First:o}"));
        }
        Assert.Equal(100, (await ListAllAsync(client, "status=dead")).Count);
    }

    [Fact]
    public async Task A_failure_that_cannot_be_retried_is_dead_at_once_and_dead_tasks_can_be_requeued_or_discarded()
    {
        var (client, agent) = await WorkspaceAsync();
        var dead = await FinalAsync(client, await SubmitAsync(client, agent, new { mode = "fatal" }, maxAttempts: 5));
        Assert.Equal((AgentTaskStatus.Dead, 1), (dead.Status, dead.Attempts));
        Assert.StartsWith("Failed and cannot be retried", dead.Reason);

        await (await client.PostAsync($"{Url}/{dead.Id}/requeue", null)).ReadAsync<TaskResponse>();
        // It runs again with its attempts reset, and (the handler refusing again) is dead again after one.
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await EventsAsync(client, dead.Id)).Count(e => e.Type == "dead") == 2, Patience));
        Assert.Equal((AgentTaskStatus.Dead, 1), (await FinalAsync(client, dead.Id) is var again ? (again.Status, again.Attempts) : default));
        Assert.Equal(["queued", "started", "failed", "dead", "requeued", "started", "failed", "dead"], (await EventsAsync(client, dead.Id)).Select(e => e.Type));

        var discarded = await (await client.PostAsync($"{Url}/{dead.Id}/discard", null)).ReadAsync<TaskResponse>();
        Assert.Equal((AgentTaskStatus.Cancelled, "Discarded from the dead letters."), (discarded.Status, discarded.Reason));
        await (await client.PostAsync($"{Url}/{dead.Id}/requeue", null)).AssertProblemAsync(HttpStatusCode.Conflict, "task_not_dead");
        await (await client.PostAsync($"{Url}/{Guid.CreateVersion7()}/discard", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task An_attempt_past_its_timeout_is_stopped_and_retried_then_dead()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "block" }, maxAttempts: 2, timeoutSeconds: 1);

        var dead = await FinalAsync(client, id);
        Assert.Equal((AgentTaskStatus.Dead, 2), (dead.Status, dead.Attempts));
        Assert.Contains("Timed out after 1 s", dead.LastError);
        Assert.All(_handler.Runs.Where(r => r.TaskId == id), r => Assert.True(r.Cancelled));
    }

    [Fact]
    public async Task Cancelling_a_queued_task_ends_it_and_cancelling_a_running_one_reaches_its_handler()
    {
        var (client, agent) = await WorkspaceAsync();
        var queued = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: DateTime.UtcNow.AddHours(1));
        var cancelled = await (await client.PostAsync($"{Url}/{queued}/cancel", null)).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        Assert.Equal((AgentTaskStatus.Cancelled, "Cancelled before it ran."), (cancelled.Status, cancelled.Reason));
        await (await client.PostAsync($"{Url}/{queued}/cancel", null)).AssertProblemAsync(HttpStatusCode.Conflict, "task_finished");

        var running = await SubmitAsync(client, agent, new { mode = "block" }, timeoutSeconds: 600);
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await GetAsync(client, running)).Status == AgentTaskStatus.Running, Patience));
        var asked = await (await client.PostAsync($"{Url}/{running}/cancel", null)).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        Assert.True(asked.CancelRequested);

        var done = await FinalAsync(client, running);
        Assert.Equal((AgentTaskStatus.Cancelled, 1), (done.Status, done.Attempts));
        Assert.True(Assert.Single(_handler.Runs, r => r.TaskId == running).Cancelled);
        Assert.Equal(["queued", "started", "cancel_requested", "cancelled"], (await EventsAsync(client, running)).Select(e => e.Type));
    }

    [Fact]
    public async Task Within_a_workspace_higher_priority_runs_first_then_earlier_run_time()
    {
        var (client, agent) = await WorkspaceAsync();
        var now = DateTime.UtcNow;
        // Priorities 9..1 due a second ago, then priority 0 due earlier still: expected order is by priority, then by run time.
        var expected = Enumerable.Range(1, 9).Reverse().Select(p => (Priority: p, RunAt: now.AddSeconds(-1)))
            .Concat(Enumerable.Range(2, 5).Reverse().Select(s => (Priority: 0, RunAt: now.AddSeconds(-s))))
            .ToList();
        // One batch, so all are due together, submitted in the opposite of the expected order.
        var tasks = expected.AsEnumerable().Reverse().Select(t => new { agentId = agent, input = new { mode = "sleep", ms = 50 }, priority = t.Priority, runAt = t.RunAt }).ToList();
        var ids = (await (await client.PostJsonAsync($"{Url}/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted))
            .Items.Select(i => i.Task.Id).Reverse().ToList();

        var started = new List<(DateTime At, int Order)>();
        for (var order = 0; order < ids.Count; order++)
        {
            await FinalAsync(client, ids[order]);
            started.Add(((await EventsAsync(client, ids[order])).First(e => e.Type == "started").At, order));
        }
        // A claim takes several tasks at once (one start time); across claims the order must hold.
        Assert.Equal(Enumerable.Range(0, ids.Count), started.OrderBy(s => s.At).ThenBy(s => s.Order).Select(s => s.Order));
    }

    [Fact]
    public async Task One_workspaces_flood_does_not_starve_another_workspaces_tasks()
    {
        var (flooder, floodAgent) = await WorkspaceAsync();
        var flood = await SubmitBatchAsync(flooder, floodAgent, 400, null, new { mode = "sleep", ms = 25 });
        var (other, otherAgent) = await WorkspaceAsync();
        var few = await SubmitBatchAsync(other, otherAgent, 5, null, new { mode = "ok" });

        foreach (var id in few)
        {
            Assert.Equal(AgentTaskStatus.Succeeded, (await FinalAsync(other, id)).Status);
        }
        var floodLeft = (await ListAllAsync(flooder, "status=queued")).Count;
        Assert.True(floodLeft > 100, $"only {floodLeft} of the flood's tasks were still queued when the other workspace's tasks were done");
        foreach (var id in flood)
        {
            await FinalAsync(flooder, id);
        }
    }

    [Fact]
    public async Task A_task_longer_than_its_lease_keeps_it_through_heartbeats_and_runs_once()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "sleep", ms = (int)(ITaskQueueFixture.Lease.TotalMilliseconds * 3) });

        var done = await FinalAsync(client, id);
        Assert.Equal((AgentTaskStatus.Succeeded, 1), (done.Status, done.Attempts));
        Assert.Single(_handler.Runs, r => r.TaskId == id);
    }

    [Fact]
    public async Task A_task_whose_worker_vanished_runs_again_once_its_lease_lapses()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: DateTime.UtcNow.AddHours(1));
        // Lease it as a worker would, then never renew it: a worker that died.
        var store = _app.Services.GetRequiredService<TaskStore>();
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var task = await db.Tasks.FindAsync(id);
            task!.RunAt = DateTime.UtcNow.AddYears(-1);
            await db.SaveChangesAsync();
        }
        var orphan = await store.LeaseByIdAsync(id, CancellationToken.None);
        Assert.NotNull(orphan);

        var done = await FinalAsync(client, id);
        Assert.Equal((AgentTaskStatus.Succeeded, 2), (done.Status, done.Attempts));
        Assert.Equal(["queued", "started", "failed", "retrying", "started", "succeeded"], (await EventsAsync(client, id)).Select(e => e.Type));
        Assert.False(await store.SucceedAsync(orphan, null, CancellationToken.None), "the vanished worker's late write must change nothing");
    }

    [Fact]
    public async Task An_event_stream_resumed_a_hundred_times_with_last_event_id_sees_every_event_once_in_order()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "progress", count = 150, ms = 10 });
        var seen = new List<long>();
        var types = new List<string>();
        string? last = null;
        for (var connection = 0; connection < 100 || !types.Contains("succeeded"); connection++)
        {
            Assert.True(connection < 1_000, "the stream never ended");
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{Url}/{id}/events");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            if (last is not null)
            {
                request.Headers.Add("Last-Event-ID", last);
            }
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // Read at most two events, then drop the connection.
            var read = 0;
            string? type = null;
            while (read < 2 && await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("id: ", StringComparison.Ordinal))
                {
                    last = line[4..];
                    seen.Add(long.Parse(last));
                }
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    type = line[7..];
                }
                else if (line.Length == 0 && type is not null)
                {
                    types.Add(type);
                    type = null;
                    read++;
                }
            }
        }

        Assert.Equal(Enumerable.Range(1, seen.Count).Select(i => (long)i), seen);
        Assert.Equal(150, types.Count(t => t == "progress"));
        Assert.Equal(["queued", "started"], types.Take(2));
        Assert.Equal("succeeded", types[^1]);
    }

    [Fact]
    public async Task Tasks_are_scoped_to_their_workspace()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: DateTime.UtcNow.AddHours(1));
        var (stranger, _) = await WorkspaceAsync();

        await (await stranger.GetAsync($"{Url}/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.GetAsync($"{Url}/{id}/events")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.PostAsync($"{Url}/{id}/cancel", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Empty(await ListAllAsync(stranger, ""));
        (await (await stranger.PostJsonAsync(Url, new { agentId = agent })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
    }

    private async Task<(HttpClient Client, Guid Agent)> WorkspaceAsync()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var client = await _app.UserClientAsync(workspace, Roles.Admin);
        var agent = await (await client.PostJsonAsync("/api/v1/agents", new { name = "worker", kind = "webhook", webhook = new { url = "https://example.com/hook" } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        return (client, agent.GetProperty("id").GetGuid());
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, object body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Url) { Content = HttpAssertions.Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        return client.SendAsync(request);
    }

    private static async Task<Guid> SubmitAsync(
        HttpClient client, Guid agent, object input, int? maxAttempts = null, int? timeoutSeconds = null, int? priority = null, DateTime? runAt = null) =>
        (await (await client.PostJsonAsync(Url, new { agentId = agent, input, maxAttempts, timeoutSeconds, priority, runAt }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

    private static async Task<List<Guid>> SubmitBatchAsync(HttpClient client, Guid agent, int count, DateTime? runAt, object? input = null, int? maxAttempts = null)
    {
        var tasks = Enumerable.Range(0, count).Select(_ => new { agentId = agent, input = input ?? new { mode = "ok" }, runAt, maxAttempts }).ToList();
        var batch = await (await client.PostJsonAsync($"{Url}/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        return batch.Items.Select(i => i.Task.Id).ToList();
    }

    private static async Task<TaskResponse> GetAsync(HttpClient client, Guid id) =>
        await (await client.GetAsync($"{Url}/{id}")).ReadAsync<TaskResponse>();

    private static async Task<TaskResponse> FinalAsync(HttpClient client, Guid id)
    {
        TaskResponse task = null!;
        var final = await HttpAssertions.EventuallyAsync(async () => AgentTaskStatus.IsFinal((task = await GetAsync(client, id)).Status), Patience);
        Assert.True(final, $"task {id} is still {task.Status} after {Patience}");
        return task;
    }

    private static async Task<List<TaskEventResponse>> EventsAsync(HttpClient client, Guid id) =>
        (await (await client.GetAsync($"{Url}/{id}/events")).ReadAsync<TaskEventPage>()).Items.ToList();

    private static async Task<List<TaskResponse>> ListAllAsync(HttpClient client, string query)
    {
        var all = new List<TaskResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"{Url}?limit=200&{query}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}"))).ReadAsync<Page<TaskResponse>>();
            all.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return all;
    }
}

/// <summary>Queue settings short enough for tests (and the scripted handler in place of the webhook one).</summary>
public static class TaskQueueSettings
{
    public static readonly Dictionary<string, string?> Fast = new()
    {
        ["Agentry:Queue:PollInterval"] = "00:00:00.050",
        ["Agentry:Queue:Lease"] = ITaskQueueFixture.Lease.ToString(),
        ["Agentry:Queue:Heartbeat"] = "00:00:00.250",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.100",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:05",
        ["Agentry:Queue:Concurrency"] = "4",
    };
}

public interface ITaskQueueFixture
{
    static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);

    AgentryApp App { get; }

    ScriptedTaskHandler Handler { get; }
}

public sealed class SqliteTaskQueueFixture : SqliteFixture, ITaskQueueFixture
{
    public ScriptedTaskHandler Handler { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => TaskQueueSettings.Fast;

    protected override Action<IServiceCollection> Services => s => s.AddSingleton<ITaskHandler>(Handler);
}

public sealed class PostgresTaskQueueFixture : PostgresFixture, ITaskQueueFixture
{
    public ScriptedTaskHandler Handler { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => TaskQueueSettings.Fast;

    protected override Action<IServiceCollection> Services => s => s.AddSingleton<ITaskHandler>(Handler);
}

public sealed class SqliteTaskQueueTests(SqliteTaskQueueFixture fixture) : TaskQueueContract(fixture), IClassFixture<SqliteTaskQueueFixture>;

public sealed class PostgresTaskQueueTests(PostgresTaskQueueFixture fixture) : TaskQueueContract(fixture), IClassFixture<PostgresTaskQueueFixture>;
