using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Agentry.Tests.Mcp;

/// <summary>The SDK's MCP client on a test host's <see cref="HttpClient"/> (its handler, headers and credentials), and reading its results.</summary>
public static class McpTestClient
{
    public static Task<McpClient> ConnectAsync(HttpClient http) => McpClient.CreateAsync(new HttpClientTransport(
        new HttpClientTransportOptions { Endpoint = new Uri(http.BaseAddress!, "/mcp"), TransportMode = HttpTransportMode.StreamableHttp }, http));

    /// <summary>A tool's structured answer, failing the test with the tool's own words when it reports an error.</summary>
    public static async Task<JsonElement> CallAsync(McpClient client, string tool, Dictionary<string, object?> arguments)
    {
        var result = await client.CallToolAsync(tool, arguments);
        Assert.True(result.IsError != true, $"{tool} failed: {Text(result)}");
        return result.StructuredContent!.Value;
    }

    public static async Task<string> ToolErrorAsync(McpClient client, string tool, Dictionary<string, object?> arguments)
    {
        var result = await client.CallToolAsync(tool, arguments);
        Assert.True(result.IsError == true, $"{tool} should have failed: {Text(result)}");
        return Text(result);
    }

    public static string Text(CallToolResult result) => string.Join(" ", result.Content.OfType<TextContentBlock>().Select(c => c.Text));
}
