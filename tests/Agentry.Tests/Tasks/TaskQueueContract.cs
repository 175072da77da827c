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
public abstract class TaskQueueContract(ITaskQueueFixture fixture) : TaskContractBase(fixture)
{
    [Fact]
    public async Task Always_failing_tasks_end_dead_after_exactly_max_attempts_with_back_off_gaps_that_never_shrink()
    {
        var (client, agent) = await WorkspaceAsync();
        var ids = await SubmitBatchAsync(client, agent, 100, null, new { mode = "fail" }, maxAttempts: 4);

        foreach (var id in ids)
        {
            var dead = await FinalAsync(client, id);
            Assert.Equal((AgentTaskStatus.Dead, 4), (dead.Status, dead.Attempts));
            // The last attempt failed in the handler, or (on a machine so loaded that its 2 s lease lapsed first)
            // was taken back from its worker; either way it is a failed attempt, and the fourth.
            Assert.True(dead.LastError!.Contains("failing on purpose (attempt 4)") || dead.LastError.Contains("stopped renewing the lease"), dead.LastError);
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
        var store = _app.Services.GetRequiredService<TaskStore>();
        // Lease a task as a worker would, then never renew it: a worker that died. The task is made due just before the
        // lease, and a live worker polling in between may take it first; then it simply runs, and the next one is tried.
        Guid id = default;
        LeasedTask? orphan = null;
        for (var attempt = 0; attempt < 5 && orphan is null; attempt++)
        {
            id = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: DateTime.UtcNow.AddHours(1));
            await using (var scope = _app.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                var task = await db.Tasks.FindAsync(id);
                task!.RunAt = DateTime.UtcNow.AddYears(-1);
                await db.SaveChangesAsync();
            }
            orphan = await store.LeaseByIdAsync(id, CancellationToken.None);
        }
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
}

public sealed class SqliteTaskQueueTests(SqliteTaskQueueFixture fixture) : TaskQueueContract(fixture), IClassFixture<SqliteTaskQueueFixture>;

public sealed class PostgresTaskQueueTests(PostgresTaskQueueFixture fixture) : TaskQueueContract(fixture), IClassFixture<PostgresTaskQueueFixture>;
