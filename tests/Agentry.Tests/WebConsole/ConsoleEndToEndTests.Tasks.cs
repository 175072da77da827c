using System.Net;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Tasks;

namespace Agentry.Tests.WebConsole;

/// <summary>The agents and tasks pages: what the browser did there, checked through the API afterwards.</summary>
public sealed partial class ConsoleEndToEndTests
{
    private static readonly TimeSpan TaskPatience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task An_agent_made_and_edited_in_the_console_runs_a_task_watched_live_to_success_and_task_actions_reach_the_api()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var (hook, deadHook) = ($"console-hook-{suffix}", $"console-dead-{suffix}");
        var name = $"hook-{suffix}";
        var admin = await ConsoleWorkspaceClientAsync();
        // A dead letter to requeue and discard: its agent's receiver refuses every call with a 400, which is not retried.
        var deadAgent = await CreateWebhookAgentAsync(admin, $"refused-{suffix}", fixture.Receiver.Url(deadHook, new Reply(400, """{"error":"no thanks"}""")));
        var deadTask = (await (await admin.PostJsonAsync("/api/v1/tasks", new { agentId = deadAgent, input = new { doomed = true } }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
        Assert.Equal(AgentTaskStatus.Dead, (await FinalTaskAsync(admin, deadTask)).Status);

        // The first call hangs until the attempt's time limit (3 s, set in the form), so the task page shows it running
        // before the retry succeeds.
        var url = fixture.Receiver.Url(hook, new Reply(200, Hang: true), new Reply(200, """{"answer":42}"""));

        // More tool agents than the list's page holds.
        var pagers = Enumerable.Range(1, 21).Select(i => $"pager-{suffix}-{i:00}").ToList();
        foreach (var pager in pagers)
        {
            await (await admin.PostJsonAsync("/api/v1/agents", new { name = pager, kind = "tool", tool = "files__read" })).ReadAsync<AgentResponse>(HttpStatusCode.Created);
        }

        var result = await fixture.RunScenarioAsync("agents-tasks.mjs", new Dictionary<string, string>
        {
            ["AGENTRY_PAGER_NAMES"] = string.Join(',', pagers),
            ["AGENTRY_AGENT_NAME"] = name,
            ["AGENTRY_HOOK_URL"] = url,
            ["AGENTRY_DEAD_TASK"] = deadTask.ToString(),
        }, output);

        // The agent the browser created and edited: version 2, both versions kept, the edit in it.
        var agentId = result.GetProperty("agentId").GetGuid();
        var agent = await (await admin.GetAsync($"/api/v1/agents/{agentId}")).ReadAsync<AgentResponse>();
        Assert.Equal((name, "webhook", 2, "Calls the test receiver."), (agent.Name, agent.Kind, agent.Version, agent.Description));
        Assert.Equal(url, agent.Webhook!.Url);
        var versions = await (await admin.GetAsync($"/api/v1/agents/{agentId}/versions")).ReadAsync<Page<AgentVersionResponse>>();
        Assert.Equal([2, 1], versions.Items.Select(v => v.Version));
        // The imported copy was deleted.
        await (await admin.GetAsync($"/api/v1/agents/{result.GetProperty("importedId").GetGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");

        // The task submitted from the agent's page: it succeeded on its second attempt, the timeline showed its events.
        var taskId = result.GetProperty("taskId").GetGuid();
        var task = await FinalTaskAsync(admin, taskId);
        Assert.Equal((AgentTaskStatus.Succeeded, 2, 2, agentId, 3), (task.Status, task.Attempts, task.AgentVersion, task.AgentId, task.TimeoutSeconds));
        Assert.Equal("console", task.Input.GetProperty("hello").GetString());
        Assert.Equal(42, task.Result!.Value.GetProperty("answer").GetInt32());
        var events = await (await admin.GetAsync($"/api/v1/tasks/{taskId}/events")).ReadAsync<TaskEventPage>();
        Assert.Equal(events.Items.Select(e => e.Seq), result.GetProperty("shown").EnumerateArray().Select(e => e.GetProperty("seq").GetInt64()));
        // The receiver got both attempts of that task, with the input the browser typed and version 2 of the agent.
        var calls = fixture.Receiver.CallsTo(hook).Where(c => c.Header(WebhookDelivery.TaskIdHeader) == taskId.ToString()).ToList();
        Assert.Equal(2, calls.Count);
        Assert.All(calls, call =>
        {
            var body = JsonDocument.Parse(call.Body).RootElement;
            Assert.Equal(("console", 2), (body.GetProperty("input").GetProperty("hello").GetString(), body.GetProperty("agentVersion").GetInt32()));
        });

        // The keyed submission, made twice, is one task.
        var keyed = (await AllTasksAsync(admin, $"agentId={agentId}")).Where(t => t.IdempotencyKey == $"key-{agentId}").ToList();
        Assert.Equal(result.GetProperty("keyedTaskId").GetGuid(), Assert.Single(keyed).Id);

        // The waiting tasks were cancelled before they ran (one from its page, one from outside while the list showed it).
        foreach (var id in new[] { "cancelledTaskId", "elsewhereTaskId" })
        {
            var cancelled = await (await admin.GetAsync($"/api/v1/tasks/{result.GetProperty(id).GetGuid()}")).ReadAsync<TaskResponse>();
            Assert.Equal((AgentTaskStatus.Cancelled, 0), (cancelled.Status, cancelled.Attempts));
        }

        // The dead letter was requeued (it ran and died again) and then discarded.
        var discarded = await (await admin.GetAsync($"/api/v1/tasks/{deadTask}")).ReadAsync<TaskResponse>();
        Assert.Equal((AgentTaskStatus.Cancelled, "Discarded from the dead letters."), (discarded.Status, discarded.Reason));
        var deadEvents = (await (await admin.GetAsync($"/api/v1/tasks/{deadTask}/events")).ReadAsync<TaskEventPage>()).Items;
        Assert.Equal(["queued", "started", "failed", "dead", "requeued", "started", "failed", "dead", "cancelled"], deadEvents.Select(e => e.Type));
        Assert.Equal(deadEvents.Select(e => e.Seq), result.GetProperty("deadTimeline").EnumerateArray().Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal(2, fixture.Receiver.CallsTo(deadHook).Count);
    }

    [Fact]
    public async Task A_task_timeline_resumes_after_the_browser_goes_offline_with_every_event_once()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var hook = $"console-resume-{suffix}";
        var name = $"flaky-{suffix}";
        var admin = await ConsoleWorkspaceClientAsync();
        // The first call hangs until the attempt's time limit (4 s, set in the form): the browser goes offline meanwhile.
        await CreateWebhookAgentAsync(admin, name, fixture.Receiver.Url(hook, new Reply(200, Hang: true), new Reply(200, """{"ok":true}""")));

        var result = await fixture.RunScenarioAsync("task-stream-resume.mjs", new Dictionary<string, string> { ["AGENTRY_AGENT_NAME"] = name }, output);

        var taskId = result.GetProperty("taskId").GetGuid();
        var task = await FinalTaskAsync(admin, taskId);
        Assert.Equal((AgentTaskStatus.Succeeded, 2, 4), (task.Status, task.Attempts, task.TimeoutSeconds));
        Assert.True(result.GetProperty("missedWhileOffline").GetInt32() > 0, "events happened while the browser was offline");
        var events = await (await admin.GetAsync($"/api/v1/tasks/{taskId}/events")).ReadAsync<TaskEventPage>();
        Assert.Equal(events.Items.Select(e => e.Seq), result.GetProperty("shown").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(2, fixture.Receiver.CallsTo(hook).Count);
    }

    /// <summary>The admin's client on the workspace the console opens with (the first of their memberships).</summary>
    private async Task<HttpClient> ConsoleWorkspaceClientAsync()
    {
        var admin = await fixture.AdminClientAsync();
        var me = await (await admin.GetAsync("/api/v1/me")).ReadAsync<JsonElement>();
        admin.DefaultRequestHeaders.Add("Agentry-Workspace", me.GetProperty("memberships")[0].GetProperty("workspaceId").GetString());
        return admin;
    }

    private static async Task<Guid> CreateWebhookAgentAsync(HttpClient client, string name, string url) =>
        (await (await client.PostJsonAsync("/api/v1/agents", new { name, kind = "webhook", webhook = new { url } }))
            .ReadAsync<AgentResponse>(HttpStatusCode.Created)).Id;

    private static async Task<TaskResponse> FinalTaskAsync(HttpClient client, Guid id)
    {
        TaskResponse task = null!;
        var final = await HttpAssertions.EventuallyAsync(
            async () => AgentTaskStatus.IsFinal((task = await (await client.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>()).Status), TaskPatience);
        Assert.True(final, $"task {id} is still {task.Status} after {TaskPatience}");
        return task;
    }

    private static async Task<List<TaskResponse>> AllTasksAsync(HttpClient client, string filter)
    {
        var all = new List<TaskResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"/api/v1/tasks?limit=200&{filter}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")))
                .ReadAsync<Page<TaskResponse>>();
            all.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return all;
    }
}
