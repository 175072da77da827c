using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Agentry.Tools;

public static class ToolsExtensions
{
    /// <summary>
    /// MCP servers: their registry, this node's supervised sessions, the governed tool catalog, and the agent tools
    /// over it (in place of the empty set, whichever of this and AddTasks runs first).
    /// </summary>
    public static IHostApplicationBuilder AddTools(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ToolsOptions>().BindConfiguration(ToolsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<McpSecretProtection>();
        services.AddSingleton<ToolMetrics>();
        services.AddSingleton<McpSupervisor>();
        services.AddHostedService(sp => sp.GetRequiredService<McpSupervisor>());
        services.AddSingleton<IToolCatalog, McpToolCatalog>();
        services.RemoveAll<IAgentTools>();
        services.AddSingleton<IAgentTools, McpAgentTools>();
        return builder;
    }

    public static IEndpointRouteBuilder MapTools(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapMcpServers().MapToolCatalog();
}
