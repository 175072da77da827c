using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using static Agentry.Tests.Mcp.McpTestClient;

namespace Agentry.Tests.Mcp;

/// <summary>
/// The whole bridge with the installation's own tool catalog: server-everything registered over stdio through the API,
/// its tools offered on <c>/mcp</c>, a call reaching the real child process and audited as an MCP call. A build without
/// the MCP server registry (<c>POST /api/v1/mcp-servers</c> answers 404) has nothing to bridge, and the test says so.
/// </summary>
public sealed class McpBridgeTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    [Fact]
    public async Task A_registered_stdio_server_s_tool_is_called_through_mcp_and_audited_as_an_mcp_call()
    {
        var app = fixture.App;
        var workspace = await app.CreateWorkspaceAsync();
        using var register = new HttpRequestMessage(HttpMethod.Post, "/api/v1/mcp-servers")
        {
            Content = HttpAssertions.Json(new
            {
                name = "everything", transport = "stdio", command = McpTestServers.Node, args = new[] { McpTestServers.Everything, "stdio" },
            }),
        };
        register.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        var registered = await fixture.Client.SendAsync(register);
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);

        await using var client = await ConnectAsync(app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall)));
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await client.ListToolsAsync()).Any(t => t.Name == "everything__echo"), TimeSpan.FromSeconds(30)),
            "/mcp never listed everything__echo");
        var result = await client.CallToolAsync("everything__echo", new Dictionary<string, object?> { ["message"] = "across two protocols" });
        Assert.NotEqual(true, result.IsError);
        Assert.Contains("across two protocols", Text(result));
        Assert.Contains("message", await ToolErrorAsync(client, "everything__echo", new()));

        var events = (await (await fixture.Client.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=tool.call")).ReadAsync<JsonElement>())
            .GetProperty("items").EnumerateArray().Where(e => e.GetProperty("target").GetString() == "everything__echo").ToList();
        Assert.Contains(events, e => e.GetProperty("outcome").GetString() == AuditOutcomes.Success
            && e.GetProperty("detail").GetProperty("via").GetString() == "mcp"
            && e.GetProperty("detail").GetProperty("arguments").EnumerateArray().Select(a => a.GetString()).SequenceEqual(["message"]));
        Assert.DoesNotContain(events, e => e.GetRawText().Contains("across two protocols", StringComparison.Ordinal));
    }
}
