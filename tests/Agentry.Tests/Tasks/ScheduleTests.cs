using System.Globalization;
using System.Net;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Cronos;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>The schedule API's behaviour, the same on every storage provider. Each test works in a workspace of its own.</summary>
public abstract class ScheduleApiContract(StorageFixture fixture)
{
    private const string Url = "/api/v1/schedules";
    private const string Yearly = "0 0 1 1 *";
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task Create_returns_201_with_location_defaults_and_the_next_slot_in_its_time_zone()
    {
        var (client, agent) = await WorkspaceAsync();
        var response = await client.PostJsonAsync(Url, new { name = "weekdays", agentId = agent, cron = "30 9 * * 1-5", timeZone = "Europe/Berlin" });

        var created = await response.ReadAsync<ScheduleResponse>(HttpStatusCode.Created);
        Assert.Equal($"{Url}/{created.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal(("weekdays", agent, "Europe/Berlin", 5, true), (created.Name, created.AgentId, created.TimeZone, created.Priority, created.Enabled));
        Assert.Equal("{}", created.Input.GetRawText());
        Assert.Null(created.LastRunAt);
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        Assert.Equal(CronExpression.Parse("30 9 * * 1-5").GetNextOccurrence(created.CreatedAt, berlin), created.NextRunAt);
        var local = TimeZoneInfo.ConvertTimeFromUtc(created.NextRunAt!.Value, berlin);
        Assert.Equal((9, 30), (local.Hour, local.Minute));
        Assert.Equal(await response.Content.ReadAsStringAsync(), await client.GetStringAsync(response.Headers.Location));

        var utc = await CreateAsync(client, new { name = "utc", agentId = agent, cron = Yearly, input = new { report = "annual" }, priority = 2, maxAttempts = 3 });
        Assert.Equal(("UTC", 2, 3), (utc.TimeZone, utc.Priority, utc.MaxAttempts));
        Assert.Equal("annual", utc.Input.GetProperty("report").GetString());
        Assert.Equal(new DateTime(utc.CreatedAt.Year + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc), utc.NextRunAt);
    }

    [Fact]
    public async Task Six_fields_carry_seconds()
    {
        var (client, agent) = await WorkspaceAsync();
        var created = await CreateAsync(client, new { name = "seconds", agentId = agent, cron = "30 0 12 1 1 *" });

        Assert.Equal(new DateTime(created.CreatedAt.Year + 1, 1, 1, 12, 0, 30, DateTimeKind.Utc), created.NextRunAt);
    }

    [Fact]
    public async Task Invalid_fields_are_a_400_naming_each_field()
    {
        var (client, agent) = await WorkspaceAsync();

        await AssertFieldErrorsAsync(client, new { name = "bad cron", agentId = agent, cron = "61 * * * *" }, "cron");
        await AssertFieldErrorsAsync(client, new { name = "not cron", agentId = agent, cron = "every day" }, "cron");
        await AssertFieldErrorsAsync(client, new { name = "zone", agentId = agent, cron = Yearly, timeZone = "Mars/Olympus_Mons" }, "timeZone");
        await AssertFieldErrorsAsync(client, new { name = "agent", agentId = Guid.CreateVersion7(), cron = Yearly }, "agentId");
        await AssertFieldErrorsAsync(client, new { name = "all", agentId = Guid.CreateVersion7(), cron = "* *", timeZone = "Nowhere" }, "cron", "timeZone", "agentId");
        await AssertFieldErrorsAsync(client, new { name = "", agentId = agent, cron = Yearly, priority = 10, maxAttempts = 0 }, "name", "priority", "maxAttempts");
        await AssertFieldErrorsAsync(client, new { cron = Yearly }, "name", "agentId");

        var schedule = await CreateAsync(client, new { name = "valid", agentId = agent, cron = Yearly });
        var bad = await client.PatchAsync($"{Url}/{schedule.Id}", HttpAssertions.Json(new { cron = "0 0 31 2 * * *", timeZone = "Atlantis/Capital" }));
        var errors = (await bad.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
        Assert.True(errors.TryGetProperty("cron", out _) && errors.TryGetProperty("timeZone", out _), errors.ToString());
        Assert.Equal(Yearly, (await GetAsync(client, schedule.Id)).Cron);
    }

    [Fact]
    public async Task Every_agent_kind_can_be_scheduled_and_a_missing_agent_cannot()
    {
        var (client, runnable) = await WorkspaceAsync();
        var tool = await (await client.PostJsonAsync("/api/v1/agents", new { name = "hammer", kind = "tool", tool = "bench__hammer" })).ReadAsync<AgentResponse>(HttpStatusCode.Created);

        // Tool agents run tasks since they have a handler (they were the kind refused with 422 agent_not_runnable before).
        Assert.Equal(tool.Id, (await CreateAsync(client, new { name = "tool", agentId = tool.Id, cron = Yearly, enabled = false })).AgentId);
        var schedule = await CreateAsync(client, new { name = "hook", agentId = runnable, cron = Yearly });
        Assert.Equal(tool.Id, (await PatchAsync(client, schedule.Id, new { agentId = tool.Id, enabled = false })).AgentId);

        // A schedule whose agent was deleted can still be changed (here: disabled), but not pointed at a missing agent.
        (await client.DeleteAsync($"/api/v1/agents/{runnable}")).EnsureSuccessStatusCode();
        Assert.False((await PatchAsync(client, schedule.Id, new { enabled = false, name = "orphan" })).Enabled);
        var other = await CreateAsync(client, new { name = "other", agentId = await ScheduleTesting.WebhookAgentAsync(client), cron = Yearly });
        (await (await client.PatchAsync($"{Url}/{other.Id}", HttpAssertions.Json(new { agentId = runnable })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").GetProperty("agentId");
    }

    [Fact]
    public async Task A_taken_name_is_a_409_and_a_deleted_schedule_frees_it()
    {
        var (client, agent) = await WorkspaceAsync();
        var first = await CreateAsync(client, new { name = "dup", agentId = agent, cron = Yearly });

        await (await client.PostJsonAsync(Url, new { name = "dup", agentId = agent, cron = Yearly })).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        var other = await CreateAsync(client, new { name = "other", agentId = agent, cron = Yearly });
        await (await client.PatchAsync($"{Url}/{other.Id}", HttpAssertions.Json(new { name = "dup" }))).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{first.Id}")).StatusCode);
        await CreateAsync(client, new { name = "dup", agentId = agent, cron = Yearly });
    }

    [Fact]
    public async Task Patch_recomputes_the_next_slot_and_disabling_clears_it()
    {
        var (client, agent) = await WorkspaceAsync();
        var created = await CreateAsync(client, new { name = "moving", agentId = agent, cron = Yearly });
        var june = await PatchAsync(client, created.Id, new { cron = "0 0 1 6 *" });
        Assert.Equal(CronExpression.Parse("0 0 1 6 *").GetNextOccurrence(june.UpdatedAt), june.NextRunAt);
        var newYork = await PatchAsync(client, created.Id, new { timeZone = "America/New_York" });
        Assert.Equal(june.NextRunAt!.Value.AddHours(4), newYork.NextRunAt); // EDT is UTC-4

        var template = await PatchAsync(client, created.Id, new { input = new { n = 1 }, priority = 9, timeoutSeconds = 60 });
        Assert.Equal((newYork.NextRunAt, 9, 60, 1), (template.NextRunAt, template.Priority, template.TimeoutSeconds, template.Input.GetProperty("n").GetInt32()));
        Assert.True(template.UpdatedAt > newYork.UpdatedAt);

        var disabled = await PatchAsync(client, created.Id, new { enabled = false });
        Assert.Equal((false, (DateTime?)null), (disabled.Enabled, disabled.NextRunAt));
        Assert.Null((await GetAsync(client, created.Id)).NextRunAt);
        var enabled = await PatchAsync(client, created.Id, new { enabled = true });
        Assert.Equal(newYork.NextRunAt, enabled.NextRunAt);

        var same = await PatchAsync(client, created.Id, new { cron = "0 0 1 6 *", priority = 9 });
        Assert.Equal(enabled.UpdatedAt, same.UpdatedAt);
    }

    [Fact]
    public async Task Create_update_and_delete_are_audited()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var client = await _app.UserClientAsync(workspace, Roles.Admin);
        var schedule = await CreateAsync(client, new { name = "audited", agentId = await ScheduleTesting.WebhookAgentAsync(client), cron = Yearly });
        await PatchAsync(client, schedule.Id, new { priority = 1 });
        (await client.DeleteAsync($"{Url}/{schedule.Id}")).EnsureSuccessStatusCode();

        var events = (await (await client.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=schedule.")).ReadAsync<Page<AuditEventResponse>>()).Items;
        Assert.Equal([AuditActions.ScheduleDeleted, AuditActions.ScheduleUpdated, AuditActions.ScheduleCreated], events.Select(e => e.Action));
        Assert.All(events, e => Assert.Equal(($"schedule:{schedule.Id}", AuditOutcomes.Success), (e.Target, e.Outcome)));
        Assert.Contains("priority", events[1].Detail!.Value.GetProperty("changed").EnumerateArray().Select(c => c.GetString()));
    }

    [Theory]
    [InlineData("-createdAt")]
    [InlineData("createdAt")]
    [InlineData("name")]
    [InlineData("-name")]
    public async Task Paging_visits_every_schedule_once_in_sort_order(string sort)
    {
        var (client, agent) = await WorkspaceAsync();
        var ours = new List<Guid>();
        foreach (var name in new[] { "kilo", "alpha", "zulu", "mike", "bravo" })
        {
            ours.Add((await CreateAsync(client, new { name, agentId = agent, cron = Yearly })).Id);
        }

        var seen = await ListAllAsync(client, $"sort={Uri.EscapeDataString(sort)}", limit: 2);

        Assert.Equal(ours.Order(), seen.Select(s => s.Id).Order());
        var expected = sort switch
        {
            "-createdAt" => seen.OrderByDescending(s => s.Id.ToString()),
            "createdAt" => seen.OrderBy(s => s.Id.ToString()),
            "name" => seen.OrderBy(s => s.Name, StringComparer.Ordinal),
            _ => seen.OrderByDescending(s => s.Name, StringComparer.Ordinal),
        };
        Assert.Equal(expected.Select(s => s.Id), seen.Select(s => s.Id));
        (await (await client.GetAsync($"{Url}?sort=nextRunAt")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").GetProperty("sort");
        await (await client.GetAsync($"{Url}?cursor=not-a-cursor")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
    }

    [Fact]
    public async Task Delete_removes_the_schedule_and_another_workspace_sees_none()
    {
        var (client, agent) = await WorkspaceAsync();
        var schedule = await CreateAsync(client, new { name = "doomed", agentId = agent, cron = Yearly });
        var (stranger, _) = await WorkspaceAsync();
        await (await stranger.GetAsync($"{Url}/{schedule.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.DeleteAsync($"{Url}/{schedule.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Empty(await ListAllAsync(stranger, "sort=name"));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{schedule.Id}")).StatusCode);

        await (await client.GetAsync($"{Url}/{schedule.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.DeleteAsync($"{Url}/{schedule.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.PatchAsync($"{Url}/{schedule.Id}", HttpAssertions.Json(new { name = "x" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Empty(await ListAllAsync(client, "sort=name"));
    }

    [Fact]
    public async Task A_due_schedule_creates_tasks_that_run_and_a_disabled_one_creates_no_more()
    {
        var (client, agent) = await WorkspaceAsync();
        var schedule = await CreateAsync(client, new { name = "every second", agentId = agent, cron = "* * * * * *", input = new { ping = true } });

        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await TasksAsync(client, schedule.Id)).Count(t => t.Status == AgentTaskStatus.Succeeded) >= 2, TimeSpan.FromSeconds(30)),
            "the schedule's tasks did not run");
        var disabled = await PatchAsync(client, schedule.Id, new { enabled = false });
        var tasks = await TasksAsync(client, schedule.Id);

        Assert.All(tasks, t => Assert.Equal((schedule.Id, agent, "{\"ping\":true}"), (t.ScheduleId!.Value, t.AgentId, t.Input.GetRawText())));
        Assert.All(tasks, t => Assert.Equal(ScheduleContractsKey(schedule.Id, t.RunAt), t.IdempotencyKey));
        Assert.Equal(tasks.Count, tasks.Select(t => t.RunAt).Distinct().Count());
        Assert.Contains(tasks, t => t.Id == disabled.LastTaskId && t.RunAt == disabled.LastRunAt);
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // a few slots pass while it is disabled
        Assert.Equal(tasks.Count, (await TasksAsync(client, schedule.Id)).Count);
        Assert.Empty((await (await client.GetAsync($"/api/v1/tasks?scheduleId={Guid.CreateVersion7()}")).ReadAsync<Page<TaskResponse>>()).Items);
    }

    [Fact]
    public async Task Slots_missed_while_no_node_ran_collapse_into_one_task_for_the_latest()
    {
        var (client, agent) = await WorkspaceAsync();
        var schedule = await CreateAsync(client, new { name = "hourly", agentId = agent, cron = Yearly });
        var now = DateTime.UtcNow;
        var longAgo = new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc).AddHours(-5);
        // As if every node had been down for five hourly slots.
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<AppDbContext>().Schedules.Where(s => s.Id == schedule.Id)
                .ExecuteUpdateAsync(u => u.SetProperty(s => s.Cron, "0 * * * *").SetProperty(s => s.NextRunAt, longAgo));
        }

        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await GetAsync(client, schedule.Id)).NextRunAt > now, TimeSpan.FromSeconds(30)),
            "the missed slots were not handled");
        var fired = await GetAsync(client, schedule.Id);
        var task = Assert.Single(await TasksAsync(client, schedule.Id));
        Assert.Equal((fired.LastTaskId, fired.LastRunAt), (task.Id, task.RunAt));
        Assert.InRange(task.RunAt, now.AddHours(-1), now); // the latest missed slot, not the first
        Assert.Equal(TimeSpan.FromHours(1), fired.NextRunAt - fired.LastRunAt);
    }

    internal static string ScheduleContractsKey(Guid scheduleId, DateTime slot) =>
        $"schedule:{scheduleId}:{slot.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture)}";

    /// <summary>A new workspace, a client of its admin (who needs no header) and a webhook agent the test handler runs.</summary>
    private async Task<(HttpClient Admin, Guid Agent)> WorkspaceAsync()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var client = await _app.UserClientAsync(workspace, Roles.Admin);
        return (client, await ScheduleTesting.WebhookAgentAsync(client));
    }

    private static async Task<ScheduleResponse> CreateAsync(HttpClient client, object body) =>
        await (await client.PostJsonAsync(Url, body)).ReadAsync<ScheduleResponse>(HttpStatusCode.Created);

    private static async Task<ScheduleResponse> GetAsync(HttpClient client, Guid id) =>
        await (await client.GetAsync($"{Url}/{id}")).ReadAsync<ScheduleResponse>();

    private static async Task<ScheduleResponse> PatchAsync(HttpClient client, Guid id, object body) =>
        await (await client.PatchAsync($"{Url}/{id}", HttpAssertions.Json(body))).ReadAsync<ScheduleResponse>();

    private static Task<List<TaskResponse>> TasksAsync(HttpClient client, Guid scheduleId) => ScheduleTesting.TasksAsync(client, scheduleId);

    private static async Task AssertFieldErrorsAsync(HttpClient client, object body, params string[] fields)
    {
        var errors = (await (await client.PostJsonAsync(Url, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
        foreach (var field in fields)
        {
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}: {errors}");
        }
    }

    private static async Task<List<ScheduleResponse>> ListAllAsync(HttpClient client, string query, int limit = 50)
    {
        var seen = new List<ScheduleResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"{Url}?limit={limit}&{query}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")))
                .ReadAsync<Page<ScheduleResponse>>();
            Assert.InRange(page.Items.Count, 0, limit);
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
            Assert.True(seen.Count < 1000, "paging does not end");
        }
        while (cursor is not null);
        return seen;
    }
}

public sealed class SqliteScheduleApiTests(SqliteScheduleFixture fixture) : ScheduleApiContract(fixture), IClassFixture<SqliteScheduleFixture>;

public sealed class PostgresScheduleApiTests(PostgresScheduleFixture fixture) : ScheduleApiContract(fixture), IClassFixture<PostgresScheduleFixture>;

public sealed class SqliteScheduleFixture : SqliteFixture
{
    protected override IReadOnlyDictionary<string, string?>? Extra => ScheduleTesting.FastRunner;

    protected override Action<IServiceCollection>? Services => ScheduleTesting.RunWebhooks;
}

public sealed class PostgresScheduleFixture : PostgresFixture
{
    protected override IReadOnlyDictionary<string, string?>? Extra => ScheduleTesting.FastRunner;

    protected override Action<IServiceCollection>? Services => ScheduleTesting.RunWebhooks;
}

/// <summary>Several nodes on one database: each slot creates exactly one task.</summary>
public sealed class ScheduleClusterTests
{
    [Fact]
    public async Task Two_nodes_fire_every_slot_exactly_once_and_miss_none()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        var settings = Settings.Cluster(database).With(ScheduleTesting.FastRunner);
        await using var nodeA = new AgentryApp(settings, ScheduleTesting.RunWebhooks);
        await using var nodeB = new AgentryApp(settings, ScheduleTesting.RunWebhooks);
        var workspace = await nodeA.CreateWorkspaceAsync();
        var a = await nodeA.UserClientAsync(workspace, Roles.Admin);
        var b = await nodeB.AdminClientAsync(); // both nodes run (and scan) from here on
        using var fired = new SlotsFiredPerNode(("A", nodeA), ("B", nodeB));
        var agent = await ScheduleTesting.WebhookAgentAsync(a);
        var schedule = await (await b.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/schedules")
        {
            Content = HttpAssertions.Json(new { name = "every second", agentId = agent, cron = "* * * * * *" }),
            Headers = { { "Agentry-Workspace", workspace.ToString() } },
        })).ReadAsync<ScheduleResponse>(HttpStatusCode.Created);

        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await ScheduleTesting.TasksAsync(a, schedule.Id)).Count >= 5, TimeSpan.FromSeconds(60)),
            "the schedule did not fire five slots");
        (await a.PatchAsync($"/api/v1/schedules/{schedule.Id}", HttpAssertions.Json(new { enabled = false }))).EnsureSuccessStatusCode();
        var tasks = await ScheduleTesting.TasksAsync(a, schedule.Id);

        var slots = tasks.Select(t => t.RunAt).Order().ToList();
        Assert.Equal(slots.Count, slots.Distinct().Count()); // one task per slot
        Assert.All(tasks, t => Assert.Equal(ScheduleApiContract.ScheduleContractsKey(schedule.Id, t.RunAt), t.IdempotencyKey));
        Assert.All(slots.Zip(slots.Skip(1)), pair => Assert.Equal(TimeSpan.FromSeconds(1), pair.Second - pair.First)); // and none skipped
        Assert.Equal(schedule.NextRunAt, slots[0]);
        // The claim alone keeps a slot to one node: the nodes' fired slots add up to the tasks, not more.
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(fired.Total == tasks.Count), TimeSpan.FromSeconds(5)),
            $"{tasks.Count} tasks, but the nodes fired {fired}");
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await ScheduleTesting.TasksAsync(a, schedule.Id)).All(t => t.Status == AgentTaskStatus.Succeeded), TimeSpan.FromSeconds(60)),
            "the schedule's tasks did not all run");
    }
}
