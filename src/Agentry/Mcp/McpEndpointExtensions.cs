using Agentry.Identity;
using ModelContextProtocol.Protocol;

namespace Agentry.Mcp;

public static class McpEndpointExtensions
{
    public const string Path = "/mcp";

    /// <summary>
    /// Agentry as an MCP server: the SDK's Streamable HTTP transport, stateless (every POST carries the whole exchange,
    /// so any API node behind the load balancer can answer it; no session to pin a client to one node), with the tool
    /// list and tool calls answered per caller and workspace (<see cref="McpToolRequests"/>).
    /// </summary>
    public static IHostApplicationBuilder AddMcpEndpoint(this IHostApplicationBuilder builder)
    {
        builder.Services.AddMcpServer(o =>
            {
                o.ServerInfo = new Implementation { Name = "agentry", Version = typeof(McpEndpointExtensions).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" };
                o.ServerInstructions = "Agentry's platform tools (agents, tasks, chat) and the tools of this workspace's MCP servers, named {server}__{tool}.";
            })
            .WithHttpTransport(o => o.Stateless = true)
            .WithListToolsHandler(McpToolRequests.ListAsync)
            .WithCallToolHandler(McpToolRequests.CallAsync);
        return builder;
    }

    /// <summary>
    /// <c>POST /mcp</c>: a bearer token or API key with the <c>tools:call</c> scope (401/403 problem details otherwise),
    /// acting in the request's workspace exactly as <c>/api/v1</c> resolves it (the key's own, or the
    /// <c>Agentry-Workspace</c> header). JSON-RPC, not REST, so it is left out of the OpenAPI document.
    /// </summary>
    public static IEndpointRouteBuilder MapMcpEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapMcp(Path).RequireScope(ApiKeyScopes.ToolsCall).RequireCurrentWorkspaceRole(Roles.Viewer).ExcludeFromDescription();
        return endpoints;
    }
}
