using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tools;
using static Agentry.Tests.Tools.ApprovalTesting;

namespace Agentry.Tests.Tools;

/// <summary>
/// <c>tool</c> agents and held calls, against the MCP reference server (server-everything over stdio, registered through
/// the API): a tool agent's task calls its tool; a held call (the agent's <c>approvalTools</c> or the server's
/// <c>requireApproval</c>) makes the task wait until a person decides, also across a restart; an llm run resumes where it paused.
/// The approval transitions are SQL of each provider's dialect, so the suite runs on SQLite and PostgreSQL.
/// </summary>
public abstract class ApprovalContract(ApprovalFixture fixture)
{
    [Fact]
    public async Task A_tool_agent_calls_its_tool_with_the_task_input_and_stores_the_result()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything");
        var echo = await AgentAsync(ws.Member, new { name = "echo", kind = "tool", tool = "everything__echo" });

        var task = await FinalAsync(ws.Member, await SubmitAsync(ws.Member, echo, new { message = "hello tools" }));

        Assert.Equal((AgentTaskStatus.Succeeded, 1), (task.Status, task.Attempts));
        Assert.Contains("hello tools", task.Result!.Value.GetProperty("content")[0].GetProperty("text").GetString());
        var call = Assert.Single(await CallsAsync(fixture.App, ws.Id, task.Id));
        Assert.Equal(("everything__echo", "agent"), (call.Target, call.Detail!.Value.GetProperty("via").GetString()));

        // What a retry cannot fix ends the task dead at once, saying why.
        var missing = await FinalAsync(ws.Member, await SubmitAsync(ws.Member, echo, new { note = "no message" }));
        Assert.Equal((AgentTaskStatus.Dead, 1), (missing.Status, missing.Attempts));
        Assert.Contains("input schema of 'everything__echo'", missing.LastError);
        Assert.Contains("message", missing.LastError);
        var text = await FinalAsync(ws.Member, await SubmitAsync(ws.Member, echo, "just text"));
        Assert.Contains("a JSON object, not string", text.LastError);
        var nowhere = await AgentAsync(ws.Member, new { name = "nowhere", kind = "tool", tool = "everything__no-such-tool" });
        var unknown = await FinalAsync(ws.Member, await SubmitAsync(ws.Member, nowhere, new { }));
        Assert.Equal(AgentTaskStatus.Dead, unknown.Status);
        Assert.Contains("no server of this workspace offers it", unknown.LastError);
    }

    [Fact]
    public async Task A_tool_agents_definition_is_validated_versioned_and_exported()
    {
        var ws = await WorkspaceAsync(fixture.App);
        foreach (var (body, field) in new (object, string)[]
        {
            (new { name = "a", kind = "tool" }, "tool"),
            (new { name = "b", kind = "tool", tool = "not-qualified" }, "tool"),
            (new { name = "c", kind = "llm", model = "standin/script", tool = "s__t" }, "tool"),
            (new { name = "d", kind = "llm", model = "standin/script", allowedTools = new[] { "s__t" }, approvalTools = new[] { "s__other" } }, "approvalTools[0]"),
            (new { name = "e", kind = "tool", tool = "s__t", approvalTools = new[] { "s__u" } }, "approvalTools[0]"),
            (new { name = "f", kind = "webhook", webhook = new { url = "https://h.example.com" }, approvalTools = new[] { "s__t" } }, "approvalTools[0]"),
        })
        {
            var errors = (await (await ws.Member.PostJsonAsync("/api/v1/agents", body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}: {errors}");
        }
        var id = await AgentAsync(ws.Member, new { name = "held", kind = "tool", tool = "s__t", approvalTools = new[] { "s__t" } });
        var changed = await (await ws.Member.PatchAsync($"/api/v1/agents/{id}", HttpAssertions.Json(new { approvalTools = Array.Empty<string>() }))).ReadAsync<JsonElement>();
        Assert.Equal((2, 0), (changed.GetProperty("version").GetInt32(), changed.GetProperty("approvalTools").GetArrayLength()));
        var first = await (await ws.Member.GetAsync($"/api/v1/agents/{id}/versions/1")).ReadAsync<JsonElement>();
        Assert.Equal("s__t", first.GetProperty("definition").GetProperty("approvalTools")[0].GetString());
        var export = await (await ws.Member.GetAsync($"/api/v1/agents/{id}/export")).ReadAsync<JsonElement>();
        Assert.Equal(("s__t", 0), (export.GetProperty("tool").GetString(), export.GetProperty("approvalTools").GetArrayLength()));
    }

    [Fact]
    public async Task A_held_call_waits_for_a_person_who_approves_it_once_and_the_call_runs_once()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything");
        var agent = await AgentAsync(ws.Member, new { name = "held echo", kind = "tool", tool = "everything__echo", approvalTools = new[] { "everything__echo" } });

        var id = await SubmitAsync(ws.Member, agent, new { message = "after approval" });
        var waiting = await WaitingAsync(ws.Member, id);

        Assert.Equal((AgentTaskStatus.Waiting, 0), (waiting.Status, waiting.Attempts));
        var approval = await ApprovalOfAsync(ws.Member, id);
        Assert.Equal((ApprovalStatus.Pending, "everything__echo", agent), (approval.Status, approval.Tool, approval.AgentId));
        Assert.Equal("after approval", approval.Arguments.GetProperty("message").GetString());
        var requested = Assert.Single(await EventsAsync(ws.Member, id), e => e.Type == TaskEventTypes.ApprovalRequested);
        Assert.Equal(approval.Id, requested.Data!.Value.GetProperty("approvalId").GetGuid());
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, id));
        Assert.Contains(approval.Id, (await (await ws.Member.GetAsync($"{ApprovalsUrl}?status=pending")).ReadAsync<Page<ApprovalResponse>>()).Items.Select(a => a.Id));
        var waitingTasks = await (await ws.Member.GetAsync($"{TasksUrl}?status=waiting")).ReadAsync<Page<TaskResponse>>();
        Assert.Contains(id, waitingTasks.Items.Select(t => t.Id));

        // Only a person with at least member rights decides: not an API key (whatever its scopes), not a viewer.
        var key = fixture.App.KeyClient(await AgentryApp.CreateApiKeyAsync(ws.Admin, ws.Id, ApiKeyScopes.TasksWrite, ApiKeyScopes.TasksRead));
        await (await DecideAsync(key, approval.Id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var viewer = await fixture.App.UserClientAsync(ws.Id, Roles.Viewer);
        await (await DecideAsync(viewer, approval.Id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(ApprovalStatus.Pending, (await (await viewer.GetAsync($"{ApprovalsUrl}/{approval.Id}")).ReadAsync<ApprovalResponse>()).Status);

        var approved = await (await DecideAsync(ws.Member, approval.Id, "approve", "looks right")).ReadAsync<ApprovalResponse>();
        Assert.Equal((ApprovalStatus.Approved, ws.MemberEmail, "looks right"), (approved.Status, approved.DecidedByName, approved.Reason));
        await (await DecideAsync(ws.Member, approval.Id, "approve")).AssertProblemAsync(HttpStatusCode.Conflict, "approval_decided");
        await (await DecideAsync(ws.Admin, approval.Id, "deny")).AssertProblemAsync(HttpStatusCode.Conflict, "approval_decided");

        var task = await FinalAsync(ws.Member, id);
        Assert.Equal((AgentTaskStatus.Succeeded, 1), (task.Status, task.Attempts));
        Assert.Contains("after approval", task.Result!.Value.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Single(await CallsAsync(fixture.App, ws.Id, id));
        var done = await (await ws.Member.GetAsync($"{ApprovalsUrl}/{approval.Id}")).ReadAsync<ApprovalResponse>();
        Assert.Equal((1, true), (done.CallAttempts, done.CallCompleted));
        Assert.Contains(await AuditAsync(fixture.App, ws.Id, AuditActions.ApprovalApproved), e => e.Target == $"approval:{approval.Id}");
        var types = (await EventsAsync(ws.Member, id)).Select(e => e.Type).ToList();
        Assert.Equal([TaskEventTypes.Queued, TaskEventTypes.Started, TaskEventTypes.ApprovalRequested, TaskEventTypes.ApprovalApproved, TaskEventTypes.Started, TaskEventTypes.Succeeded], types);
    }

    [Fact]
    public async Task A_denied_tool_agent_call_ends_its_task_and_a_cancel_ends_a_waiting_one()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "guarded", requireApproval: true);
        var agent = await AgentAsync(ws.Member, new { name = "guarded echo", kind = "tool", tool = "guarded__echo" });

        var denied = await SubmitAsync(ws.Member, agent, new { message = "never" });
        await WaitingAsync(ws.Member, denied);
        var approval = await ApprovalOfAsync(ws.Member, denied);
        await (await DecideAsync(ws.Member, approval.Id, "deny", "not today")).ReadAsync<ApprovalResponse>();

        var task = await FinalAsync(ws.Member, denied);
        Assert.Equal((AgentTaskStatus.Cancelled, $"Denied by {ws.MemberEmail}: not today"), (task.Status, task.Reason));
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, denied));

        var cancelled = await SubmitAsync(ws.Member, agent, new { message = "also never" });
        await WaitingAsync(ws.Member, cancelled);
        await (await ws.Member.PostAsync($"{TasksUrl}/{cancelled}/cancel", null)).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        Assert.Equal(AgentTaskStatus.Cancelled, (await FinalAsync(ws.Member, cancelled)).Status);
        var orphan = await ApprovalOfAsync(ws.Member, cancelled);
        Assert.Equal(ApprovalStatus.Cancelled, orphan.Status);
        await (await DecideAsync(ws.Member, orphan.Id, "approve")).AssertProblemAsync(HttpStatusCode.Conflict, "approval_decided");
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, cancelled));

        await (await ws.Member.GetAsync($"{ApprovalsUrl}?status=maybe")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await ws.Member.GetAsync($"{ApprovalsUrl}/{Guid.CreateVersion7()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        var other = await WorkspaceAsync(fixture.App);
        await (await DecideAsync(other.Member, orphan.Id, "approve")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task An_llm_run_pauses_at_a_held_call_and_resumes_where_it_stopped_once_approved_or_denied()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything", requireApproval: false, "echo");
        var agent = await AgentAsync(ws.Member, new { name = "scripted", kind = "llm", model = "standin/script", allowedTools = new[] { "everything__echo" } });
        var marker = Guid.NewGuid().ToString("N");

        var id = await SubmitAsync(ws.Member, agent, Script(("everything__echo", new { message = $"approved {marker}" })));
        await WaitingAsync(ws.Member, id);
        Assert.Equal(1, fixture.ModelRequests(marker));
        await (await DecideAsync(ws.Member, (await ApprovalOfAsync(ws.Member, id)).Id, "approve")).ReadAsync<ApprovalResponse>();

        var task = await FinalAsync(ws.Member, id);
        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        var result = Result(task);
        Assert.Contains($"approved {marker}", result.Text);
        Assert.Equal(2, result.Steps);
        // Resumed, not started over: the model was asked once before the pause and once after.
        Assert.Equal(2, fixture.ModelRequests(marker));
        Assert.Single(await CallsAsync(fixture.App, ws.Id, id));

        var refused = Guid.NewGuid().ToString("N");
        var deniedId = await SubmitAsync(ws.Member, agent, Script(("everything__echo", new { message = refused })));
        await WaitingAsync(ws.Member, deniedId);
        await (await DecideAsync(ws.Member, (await ApprovalOfAsync(ws.Member, deniedId)).Id, "deny", "too risky")).ReadAsync<ApprovalResponse>();
        var denied = await FinalAsync(ws.Member, deniedId);
        Assert.Equal(AgentTaskStatus.Succeeded, denied.Status);
        Assert.Contains($"denied by {ws.MemberEmail}: too risky", Result(denied).Text);
        Assert.Equal($"denied by {ws.MemberEmail}: too risky", Result(denied).Trace[0].ToolResults[0].Error);
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, deniedId));
    }

    [Fact]
    public async Task An_llm_agent_asking_for_a_tool_off_its_allow_list_is_refused_and_audited()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything");
        var agent = await AgentAsync(ws.Member, new { name = "narrow", kind = "llm", model = "standin/script", allowedTools = new[] { "everything__echo" } });

        var task = await FinalAsync(ws.Member, await SubmitAsync(ws.Member, agent, Script(("everything__get-sum", new { a = 1, b = 2 }))));

        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        Assert.Contains("There is no tool named 'everything__get-sum'", Result(task).Text);
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, task.Id));
        var refusal = Assert.Single(await AuditAsync(fixture.App, ws.Id, AuditActions.ToolRefused), e => e.Target == $"task:{task.Id}");
        Assert.Equal(("everything__get-sum", AuditOutcomes.Denied), (refusal.Detail!.Value.GetProperty("tool").GetString(), refusal.Outcome));
    }

    [Fact]
    public async Task An_approved_call_with_a_stored_result_is_not_made_again_and_one_started_without_a_result_is_repeated_and_said_so()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything", requireApproval: true);
        var agent = await AgentAsync(ws.Member, new { name = "once", kind = "tool", tool = "everything__echo" });

        // As a worker leaves it that stopped after the call's result was committed and before the task's outcome: the next run takes the result.
        var (stored, _) = await InsertApprovedAsync(fixture.App, ws.Id, agent, new { message = "original" }, """{"content":[{"type":"text","text":"Echo: stored"}]}""");
        var task = await FinalAsync(ws.Member, stored);
        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        Assert.Equal("Echo: stored", task.Result!.Value.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Empty(await CallsAsync(fixture.App, ws.Id, stored));

        // As a worker leaves it that stopped between the call and its result's commit: the call is made again, and that is said.
        var (repeated, approvalId) = await InsertApprovedAsync(fixture.App, ws.Id, agent, new { message = "again" }, result: null);
        task = await FinalAsync(ws.Member, repeated);
        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        Assert.Contains("again", task.Result!.Value.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Single(await CallsAsync(fixture.App, ws.Id, repeated));
        var repeat = Assert.Single(await EventsAsync(ws.Member, repeated), e => e.Type == TaskEventTypes.Progress).Data!.Value;
        Assert.Equal(("approval.repeat", 2), (repeat.GetProperty("type").GetString(), repeat.GetProperty("attempt").GetInt32()));
        var approval = await (await ws.Member.GetAsync($"{ApprovalsUrl}/{approvalId}")).ReadAsync<ApprovalResponse>();
        Assert.Equal((2, true), (approval.CallAttempts, approval.CallCompleted));
    }

    [Fact]
    public async Task A_pending_approval_survives_a_restart_and_the_run_completes_once_approved()
    {
        var ws = await WorkspaceAsync(fixture.App);
        await RegisterEverythingAsync(ws.Admin, "everything", requireApproval: true);
        var agent = await AgentAsync(ws.Member, new { name = "durable", kind = "llm", model = "standin/script", allowedTools = new[] { "everything__echo" } });
        var marker = Guid.NewGuid().ToString("N");
        var id = await SubmitAsync(ws.Member, agent, Script(("everything__echo", new { message = $"survived {marker}" })));
        await WaitingAsync(ws.Member, id);
        var approval = await ApprovalOfAsync(ws.Member, id);

        await fixture.RestartAsync();
        var member = await fixture.App.SignedInClientAsync(ws.MemberEmail, ws.MemberPassword);
        Assert.Equal(AgentTaskStatus.Waiting, (await (await member.GetAsync($"{TasksUrl}/{id}")).ReadAsync<TaskResponse>()).Status);
        await (await DecideAsync(member, approval.Id, "approve")).ReadAsync<ApprovalResponse>();

        var task = await FinalAsync(member, id);
        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        Assert.Contains($"survived {marker}", Result(task).Text);
        Assert.Equal(2, fixture.ModelRequests(marker));
        Assert.Single(await CallsAsync(fixture.App, ws.Id, id));
    }
}

public sealed class SqliteApprovalTests(SqliteApprovalFixture fixture) : ApprovalContract(fixture), IClassFixture<SqliteApprovalFixture>;

public sealed class PostgresApprovalTests(PostgresApprovalFixture fixture) : ApprovalContract(fixture), IClassFixture<PostgresApprovalFixture>;
