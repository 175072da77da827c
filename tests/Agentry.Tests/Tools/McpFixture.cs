using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Tools;

/// <summary>
/// One app for the MCP tests: loopback allowed for Streamable HTTP servers started by the tests, quick restarts, and a
/// key-encryption key so server secrets are sealed at rest.
/// </summary>
public sealed class McpFixture : SqliteFixture
{
    public const string KeyEncryptionKey = "q83vEi7s0YH1oQm0X8TnIhN6u8fVz8s3yF2b0u2mGkA=";

    protected override IReadOnlyDictionary<string, string?>? Extra => new Dictionary<string, string?>
    {
        ["Agentry:Egress:AllowedNetworks:0"] = "127.0.0.0/8",
        ["Agentry:Tools:RestartDelay"] = "00:00:00.200",
        ["Agentry:Tools:StartTimeout"] = "00:00:20",
        ["Agentry:Tokens:KeyEncryptionKey"] = KeyEncryptionKey,
    };
}

/// <summary>Workspaces, servers and calls through the HTTP API, as the MCP tests use them.</summary>
internal static class McpApi
{
    public const string Servers = "/api/v1/mcp-servers";

    public static async Task<(Guid Workspace, HttpClient Admin)> WorkspaceAsync(AgentryApp app)
    {
        var workspace = await app.CreateWorkspaceAsync();
        return (workspace, await app.UserClientAsync(workspace, Roles.Admin));
    }

    /// <summary>server-everything over stdio; <paramref name="environment"/> goes to its process.</summary>
    public static object Everything(string name = "everything", Dictionary<string, string>? environment = null, int? callTimeoutSeconds = null) =>
        new { name, transport = "stdio", command = McpTestServers.Node, args = new[] { McpTestServers.Everything, "stdio" }, environment, callTimeoutSeconds };

    public static async Task<JsonElement> CreateAsync(HttpClient client, object body)
    {
        var response = await client.PostJsonAsync(Servers, body);
        return await response.ReadAsync<JsonElement>(HttpStatusCode.Created);
    }

    public static Task<HttpResponseMessage> CallAsync(HttpClient client, string server, string tool, object arguments) =>
        client.PostJsonAsync($"/api/v1/tools/{server}/{tool}/call", new { arguments });

    /// <summary>A call that must succeed; returns the text of its first content item.</summary>
    public static async Task<string> TextAsync(HttpClient client, string server, string tool, object arguments)
    {
        var result = await (await CallAsync(client, server, tool, arguments)).ReadAsync<JsonElement>();
        Assert.False(result.GetProperty("isError").GetBoolean(), result.ToString());
        var first = result.GetProperty("content")[0];
        Assert.Equal("text", first.GetProperty("type").GetString());
        return first.GetProperty("text").GetString()!;
    }

    public static async Task<JsonElement> StatusAsync(HttpClient client, Guid id) =>
        (await (await client.GetAsync($"{Servers}/{id}")).ReadAsync<JsonElement>()).GetProperty("status");
}
