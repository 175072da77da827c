using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// The durability promise with real processes: separate worker processes (the shipped program with
/// <c>Agentry:Role=worker</c>) are killed with SIGKILL mid-work while an API node in the test accepts tasks
/// and sweeps lapsed leases. The tasks are webhook tasks delivered to a real loopback receiver, which keeps
/// one effect per task id.
/// </summary>
public abstract class WorkerCrashContract(ITestOutputHelper output)
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(4);

    /// <summary>The storage settings every node of the test shares, and what to dispose afterwards.</summary>
    protected abstract Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync();

    [Fact]
    public async Task Ten_thousand_tasks_survive_twenty_worker_kills_and_each_has_exactly_one_committed_effect()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (settings, owned) = await StorageAsync();
        await using var _ = owned;
        await using var api = new AgentryApp(settings.With(QueueSettings(Lease)).With(new Dictionary<string, string?> { [Agentry.Tasks.TaskExtensions.RoleKey] = "api" }));
        var (client, agent) = await WebhookAgentAsync(api, receiver.Url("effect"));
        var ids = new List<Guid>();
        for (var batch = 0; batch < 10; batch++)
        {
            var tasks = Enumerable.Range(0, 1_000).Select(i => new { agentId = agent, input = new { batch, i }, maxAttempts = 100 }).ToList();
            ids.AddRange((await (await client.PostJsonAsync("/api/v1/tasks/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted)).Items.Select(t => t.Task.Id));
        }

        var kills = 0;
        while (kills < 20)
        {
            await using var worker = await StartWorkerAsync(settings);
            await Task.Delay(Random.Shared.Next(300, 1_200));
            worker.Kill();
            kills++;
            output.WriteLine($"kill {kills}: {receiver.CallsTo("effect").Count} deliveries");
        }
        await using (var last = await StartWorkerAsync(settings))
        {
            Assert.True(await HttpAssertions.EventuallyAsync(async () => await CountAsync(api, AgentTaskStatus.Succeeded) == ids.Count, TimeSpan.FromMinutes(5)),
                $"only {await CountAsync(api, AgentTaskStatus.Succeeded)} of {ids.Count} tasks succeeded");
            // The killed workers may have finished every task before this one started: one more, which only it can run,
            // so its meters have something to show.
            ids.Add((await (await client.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { batch = 10, i = 0 } })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id);
            Assert.True(await HttpAssertions.EventuallyAsync(async () => await CountAsync(api, AgentTaskStatus.Succeeded) == ids.Count, TimeSpan.FromMinutes(1)),
                "the task submitted after the kills did not succeed on the last worker");
            // The worker's own series (a process of its own, so no other node's meters mix in).
            using var scraper = new HttpClient { BaseAddress = last.BaseAddress };
            var metrics = await scraper.GetStringAsync("/metrics");
            Assert.True(Sample(metrics, "task_attempts_total{") > 0, metrics);
            Assert.True(Sample(metrics, "task_attempts_finished_total{", "outcome=\"succeeded\"") > 0, metrics);
            Assert.True(Sample(metrics, "task_run_seconds_count") > 0, metrics);
            Assert.True(Sample(metrics, "task_queue_wait_seconds_count") > 0, metrics);
            Assert.Contains("task_queue_depth{", metrics);
            Assert.Contains("task_dead_letters", metrics);
        }

        Assert.Equal(0, await CountAsync(api, AgentTaskStatus.Dead) + await CountAsync(api, AgentTaskStatus.Running) + await CountAsync(api, AgentTaskStatus.Queued));
        // The receiver keeps one effect per task id (what an idempotent receiver stores); repeats are at-least-once deliveries.
        var deliveries = TaskIds(receiver.CallsTo("effect"));
        var effects = deliveries.ToHashSet();
        Assert.Equal(ids.ToHashSet(), effects);
        output.WriteLine($"{ids.Count} tasks, {kills} kills, {deliveries.Count - effects.Count} repeated deliveries (at-least-once), {effects.Count} distinct effects");
    }

    [Fact]
    public async Task An_orphaned_task_runs_again_within_one_and_a_half_leases_after_its_worker_is_killed()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (settings, owned) = await StorageAsync();
        await using var _ = owned;
        await using var api = new AgentryApp(settings.With(QueueSettings(Lease)).With(new Dictionary<string, string?> { [Agentry.Tasks.TaskExtensions.RoleKey] = "api" }));
        var (client, agent) = await WebhookAgentAsync(api, receiver.Url("hang", new Reply(0, Hang: true)));
        await using var first = await StartWorkerAsync(settings);
        var id = (await (await client.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { } })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(TaskIds(receiver.CallsTo("hang")).Contains(id)), TimeSpan.FromSeconds(60)), "the first worker never ran the task");
        await using var second = await StartWorkerAsync(settings);

        first.Kill();
        var sinceKill = Stopwatch.StartNew();
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(TaskIds(receiver.CallsTo("hang")).Count(t => t == id) == 2), Lease * 3), "the orphan never ran again");
        var elapsed = sinceKill.Elapsed;

        output.WriteLine($"ran again {elapsed.TotalSeconds:F2} s after the kill (lease {Lease.TotalSeconds} s)");
        Assert.True(elapsed < Lease * 1.5, $"the orphan ran again only after {elapsed.TotalSeconds:F2} s; the lease is {Lease.TotalSeconds} s");
        var events = (await (await client.GetAsync($"/api/v1/tasks/{id}/events")).ReadAsync<TaskEventPage>()).Items;
        Assert.Equal(["queued", "started", "failed", "retrying", "started"], events.Select(e => e.Type));
    }

    [Fact]
    public async Task A_worker_stopped_with_sigterm_hands_its_running_task_back_without_counting_the_attempt()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (settings, owned) = await StorageAsync();
        await using var _ = owned;
        await using var api = new AgentryApp(settings.With(QueueSettings(Lease)).With(new Dictionary<string, string?> { [Agentry.Tasks.TaskExtensions.RoleKey] = "api" }));
        var (client, agent) = await WebhookAgentAsync(api, receiver.Url("hang", new Reply(0, Hang: true)));
        await using var worker = await StartWorkerAsync(settings, new Dictionary<string, string?> { ["Agentry:Queue:ShutdownGrace"] = "00:00:01" });
        var id = (await (await client.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { } })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(TaskIds(receiver.CallsTo("hang")).Contains(id)), TimeSpan.FromSeconds(60)), "the worker never ran the task");

        worker.Terminate();
        Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var task = await (await client.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>();
        Assert.Equal((AgentTaskStatus.Queued, 0), (task.Status, task.Attempts));
        var events = (await (await client.GetAsync($"/api/v1/tasks/{id}/events")).ReadAsync<TaskEventPage>()).Items;
        Assert.Equal(["queued", "started", "requeued"], events.Select(e => e.Type));
    }

    private static Dictionary<string, string?> QueueSettings(TimeSpan lease) => new()
    {
        ["Agentry:Queue:Lease"] = lease.ToString(),
        ["Agentry:Queue:Heartbeat"] = "00:00:00.500",
        ["Agentry:Queue:PollInterval"] = "00:00:00.050",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.050",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:00.500",
        ["Agentry:Queue:Concurrency"] = "32",
        ["Agentry:Egress:AllowedNetworks:0"] = "127.0.0.1/32",
    };

    /// <summary>The sum of the Prometheus samples whose line starts with <paramref name="name"/> (and contains <paramref name="label"/>).</summary>
    private static double Sample(string text, string name, string label = "") => PrometheusText.Samples(text, name, label).Sum();

    private static Task<AgentryProcess> StartWorkerAsync(Dictionary<string, string?> storage, Dictionary<string, string?>? extra = null) =>
        AgentryProcess.StartNodeAsync(storage.With(QueueSettings(Lease)).With(new Dictionary<string, string?> { [Agentry.Tasks.TaskExtensions.RoleKey] = "worker" }).With(extra));

    private static List<Guid> TaskIds(IEnumerable<ReceivedCall> calls) =>
        calls.Select(c => JsonDocument.Parse(c.Body).RootElement.GetProperty("taskId").GetGuid()).ToList();

    private static async Task<(HttpClient Client, Guid Agent)> WebhookAgentAsync(AgentryApp api, string url)
    {
        var workspace = await api.CreateWorkspaceAsync();
        var client = await api.UserClientAsync(workspace, Roles.Admin);
        var agent = await (await client.PostJsonAsync("/api/v1/agents", new { name = "receiver", kind = "webhook", webhook = new { url } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        return (client, agent.GetProperty("id").GetGuid());
    }

    private static async Task<int> CountAsync(AgentryApp api, string status)
    {
        await using var scope = api.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Tasks.CountAsync(t => t.Status == status);
    }
}

public sealed class SqliteWorkerCrashTests(ITestOutputHelper output) : WorkerCrashContract(output)
{
    protected override Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync() =>
        Task.FromResult<(Dictionary<string, string?>, IAsyncDisposable?)>((Settings.Sqlite(TempFiles.Database()), null));
}

public sealed class PostgresWorkerCrashTests(ITestOutputHelper output) : WorkerCrashContract(output)
{
    protected override async Task<(Dictionary<string, string?> Settings, IAsyncDisposable? Owned)> StorageAsync()
    {
        var database = await PostgresDatabase.CreateAsync();
        return (Settings.Postgres(database.ConnectionString), database);
    }
}
