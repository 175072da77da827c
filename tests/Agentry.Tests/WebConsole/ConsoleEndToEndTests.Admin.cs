using System.Net;
using System.Text.Json;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Tools;

namespace Agentry.Tests.WebConsole;

public sealed partial class ConsoleEndToEndTests
{
    [Fact]
    public async Task An_api_key_created_in_the_console_works_with_curl_until_it_is_revoked_there_and_both_are_audited()
    {
        var name = "console-key-" + Guid.NewGuid().ToString("N")[..6];
        var email = $"person-{Guid.NewGuid():N}@agentry.test";
        var result = await fixture.RunScenarioAsync("admin.mjs", new Dictionary<string, string> { ["E2E_KEY_NAME"] = name, ["E2E_USER_EMAIL"] = email }, output);
        Assert.Equal((200, 401), (result.GetProperty("allowed").GetInt32(), result.GetProperty("refused").GetInt32()));

        using var admin = await fixture.AdminClientAsync();
        var workspace = (await (await admin.GetAsync("/api/v1/me")).ReadAsync<JsonElement>()).GetProperty("memberships")[0].GetProperty("workspaceId").GetGuid();
        var keys = (await (await admin.GetAsync($"/api/v1/workspaces/{workspace}/api-keys?limit=100")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray();
        var key = Assert.Single(keys, k => k.GetProperty("name").GetString() == name);
        Assert.Equal(["agents:read"], key.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(JsonValueKind.String, key.GetProperty("revokedAt").ValueKind);
        Assert.StartsWith(key.GetProperty("prefix").GetString()!, result.GetProperty("prefix").GetString()!);

        var members = (await (await admin.GetAsync($"/api/v1/workspaces/{workspace}/members?limit=100")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray();
        Assert.Equal("viewer", Assert.Single(members, m => m.GetProperty("email").GetString() == email).GetProperty("role").GetString());
        var audit = (await (await admin.GetAsync($"/api/v1/audit?action=apikey.&limit=100")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray()
            .Where(e => e.GetProperty("target").GetString()?.Contains(key.GetProperty("id").GetString()!, StringComparison.Ordinal) == true)
            .Select(e => e.GetProperty("action").GetString()).Order().ToList();
        Assert.Equal(["apikey.created", "apikey.revoked"], audit);
    }

    [Fact]
    public async Task A_held_tool_call_is_approved_in_the_console_and_its_task_then_makes_the_call()
    {
        using var admin = await fixture.AdminClientAsync();
        var server = "everything-" + Guid.NewGuid().ToString("N")[..6];
        await ApprovalTesting.RegisterEverythingAsync(admin, server, requireApproval: false, "echo");
        var agent = await ApprovalTesting.AgentAsync(admin, new { name = "echo-" + server, kind = "tool", tool = $"{server}__echo" });
        var task = await ApprovalTesting.SubmitAsync(admin, agent, new { message = "held until a person says yes" });
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
            (await (await admin.GetAsync($"/api/v1/tasks/{task}")).ReadAsync<TaskResponse>()).Status == AgentTaskStatus.Waiting, TimeSpan.FromSeconds(60)));

        await fixture.RunScenarioAsync("tools.mjs", new Dictionary<string, string> { ["E2E_SERVER"] = server, ["E2E_TASK"] = task.ToString() }, output);

        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
            (await (await admin.GetAsync($"/api/v1/tasks/{task}")).ReadAsync<TaskResponse>()).Status == AgentTaskStatus.Succeeded, TimeSpan.FromSeconds(60)));
        var finished = await (await admin.GetAsync($"/api/v1/tasks/{task}")).ReadAsync<JsonElement>();
        Assert.Contains("held until a person says yes", finished.GetProperty("result").GetRawText(), StringComparison.Ordinal);
        var approval = Assert.Single((await (await admin.GetAsync($"/api/v1/approvals?taskId={task}")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Equal(("approved", "checked by the console test", true),
            (approval.GetProperty("status").GetString(), approval.GetProperty("reason").GetString(), approval.GetProperty("callCompleted").GetBoolean()));
    }
}
