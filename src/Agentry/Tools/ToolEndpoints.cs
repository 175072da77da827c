using System.Globalization;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using ModelContextProtocol;

namespace Agentry.Tools;

/// <summary>A tool as the catalog lists it: <see cref="QualifiedName"/> is how agents' allow-lists and models name it.</summary>
public sealed record ToolResponse(string Server, string Name, string QualifiedName, string? Description, JsonElement InputSchema, bool RequiresApproval);

/// <summary>The body of a direct call: the tool's arguments, checked against its input schema.</summary>
public sealed record ToolCallRequest(JsonElement? Arguments);

/// <summary>What the tool returned: its content items (text, image, audio, resource, resource link) as MCP shapes them.</summary>
public sealed record ToolCallResponse(JsonElement Content, JsonElement? StructuredContent, bool IsError);

public static class ToolEndpoints
{
    public static IEndpointRouteBuilder MapToolCatalog(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/tools", "Tools");

        group.MapGet("/", ListAsync).WithName("ListTools").WithSummary("List the tools of the workspace's enabled MCP servers")
            .RequireScope(ApiKeyScopes.ToolsCall).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPost("/{server}/{tool}/call", CallAsync).WithName("CallTool").WithSummary("Call a tool directly, with arguments checked against its input schema")
            .RequireScope(ApiKeyScopes.ToolsCall).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable).ProducesProblem(StatusCodes.Status504GatewayTimeout);
        return endpoints;
    }

    internal static async Task<Ok<Page<ToolResponse>>> ListAsync(
        [FromQuery] string? server, CurrentWorkspace workspace, IToolCatalog catalog, CancellationToken ct)
    {
        var tools = await catalog.ListAsync(workspace.Id, ct);
        return TypedResults.Ok(new Page<ToolResponse>(
            [.. tools.Where(t => server is null || t.Server == server).Select(t => new ToolResponse(t.Server, t.Name, t.QualifiedName, t.Description, t.InputSchema, t.RequiresApproval))],
            null));
    }

    internal static async Task<Results<Ok<ToolCallResponse>, ProblemHttpResult>> CallAsync(
        string server, string tool, ToolCallRequest? request, CurrentWorkspace workspace, Caller caller, IToolCatalog catalog,
        McpSupervisor supervisor, HttpContext http, CancellationToken ct)
    {
        try
        {
            if (await catalog.FindAsync(workspace.Id, server, tool, ct) is not { } found)
            {
                return Problem.NotFound($"The workspace has no enabled MCP server '{server}' with a tool '{tool}'.");
            }
            var result = await catalog.CallAsync(found, request?.Arguments ?? default, new ToolCaller(
                workspace.Id, caller.UserId == Guid.Empty ? null : caller.UserId, caller.KeyId ?? caller.ServiceAccountId, null, null, ToolCaller.ViaApi), ct);
            return TypedResults.Ok(new ToolCallResponse(
                JsonSerializer.SerializeToElement(result.Content, McpJsonUtilities.DefaultOptions),
                result.StructuredContent is { } structured ? JsonSerializer.SerializeToElement(structured, McpJsonUtilities.DefaultOptions) : null,
                result.IsError == true));
        }
        catch (ToolArgumentsException ex)
        {
            return Problem.Validation(new Dictionary<string, string[]>(ex.Errors));
        }
        catch (DependencyTimeoutException ex)
        {
            return Problem.GatewayTimeout("tool_timeout", ex.Message);
        }
        catch (DependencyUnavailableException ex)
        {
            var wait = supervisor.RetryAfter(workspace.Id, server);
            http.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            return Problem.Unavailable(ex.Message);
        }
    }
}
