using System.Diagnostics;
using System.Text.Json;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Tools;
using Agentry.Workspaces;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Agentry.Mcp;

/// <summary>
/// <c>tools/list</c> and <c>tools/call</c> on <c>/mcp</c>, answered for the caller and workspace of the HTTP request that
/// carries them (the transport is stateless, so each JSON-RPC request is handled inside its own HTTP request, after the
/// endpoint's access rules resolved the caller and the workspace). The tools are the platform tools the caller may use
/// and, when tool servers are installed (<see cref="IToolCatalog"/>), the workspace's bridged tools as
/// <c>{server}__{tool}</c>.
/// </summary>
internal static class McpToolRequests
{
    /// <summary>The audit action of a tool call, the same one the tool catalog records for bridged calls.</summary>
    public const string AuditAction = "tool.call";

    /// <summary>Bridged tools may write, send or spend: like <c>POST /api/v1/tools/{server}/{tool}/call</c>, they need members.</summary>
    private const string BridgedRole = Roles.Member;

    public static async ValueTask<ListToolsResult> ListAsync(RequestContext<ListToolsRequestParams> request, CancellationToken ct)
    {
        var call = await BindAsync(request.Services);
        var tools = new List<Tool>();
        foreach (var tool in PlatformTools.All)
        {
            if (await RefusalAsync(call, tool.Name, tool.Scope, tool.Role, ct) is null)
            {
                tools.Add(tool.ToProtocol());
            }
        }
        if (Catalog(call) is { } catalog && await RefusalAsync(call, "bridged tools", ApiKeyScopes.ToolsCall, BridgedRole, ct) is null)
        {
            try
            {
                tools.AddRange((await catalog.ListAsync(call.WorkspaceId, ct)).Select(t => new Tool
                {
                    Name = t.QualifiedName, Description = t.Description, InputSchema = t.InputSchema,
                }));
            }
            catch (DependencyUnavailableException ex)
            {
                McpLog.BridgedListFailed(Logger(call), ex);
            }
        }
        return new ListToolsResult { Tools = tools };
    }

    public static async ValueTask<CallToolResult> CallAsync(RequestContext<CallToolRequestParams> request, CancellationToken ct)
    {
        var call = await BindAsync(request.Services);
        var name = request.Params?.Name ?? "";
        var arguments = JsonSerializer.SerializeToElement(request.Params?.Arguments ?? new Dictionary<string, JsonElement>());
        var started = Stopwatch.GetTimestamp();
        var (result, outcome, audited) = (McpToolResults.Error("The call did not finish."), "failed", false);
        try
        {
            (result, outcome, audited) = PlatformTools.Find(name) is { } platform
                ? await CallPlatformAsync(call, platform, arguments, ct)
                : await CallBridgedAsync(call, name, arguments, ct);
            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        finally
        {
            if (!audited)
            {
                await AuditAsync(call, name, arguments, outcome, Stopwatch.GetElapsedTime(started));
            }
        }
    }

    private static async Task<(CallToolResult, string, bool)> CallPlatformAsync(McpCall call, PlatformTool tool, JsonElement arguments, CancellationToken ct)
    {
        if (await RefusalAsync(call, tool.Name, tool.Scope, tool.Role, ct) is { } refusal)
        {
            return Denied(call, tool.Name, refusal);
        }
        var result = await tool.RunAsync(call, arguments, ct);
        return (result, result.IsError == true ? "tool_error" : "ok", false);
    }

    /// <summary>
    /// A workspace's tool through the catalog, which checks the arguments against the tool's schema, applies its timeout
    /// and records the call's audit event itself (<c>via: mcp</c>); what is refused before it gets there is audited here.
    /// </summary>
    private static async Task<(CallToolResult, string, bool)> CallBridgedAsync(McpCall call, string name, JsonElement arguments, CancellationToken ct)
    {
        if (Catalog(call) is not { } catalog || !ToolDescriptor.TrySplit(name, out var server, out var tool)
            || await catalog.FindAsync(call.WorkspaceId, server, tool, ct) is not { } found)
        {
            return (McpToolResults.Error($"There is no tool '{name}' in this workspace; tools/list names those there are."), "unknown_tool", false);
        }
        if (await RefusalAsync(call, name, ApiKeyScopes.ToolsCall, BridgedRole, ct) is { } refusal)
        {
            return Denied(call, name, refusal);
        }
        var caller = new ToolCaller(
            call.WorkspaceId, call.Caller.UserId == Guid.Empty ? null : call.Caller.UserId, call.Caller.KeyId ?? call.Caller.ServiceAccountId,
            null, null, ToolCaller.ViaMcp);
        try
        {
            return (await catalog.CallAsync(found, arguments, caller, ct), "", true);
        }
        catch (ToolArgumentsException ex)
        {
            return (McpToolResults.InvalidArguments(ex.Errors), "", true);
        }
        catch (TimeoutException ex)
        {
            return (McpToolResults.Error($"Tool '{name}' timed out: {ex.Message}"), "", true);
        }
        catch (DependencyUnavailableException ex)
        {
            return (McpToolResults.Error($"Tool '{name}' is unavailable: {ex.Message}"), "", true);
        }
    }

    private static (CallToolResult, string, bool) Denied(McpCall call, string tool, string refusal)
    {
        McpLog.Refused(Logger(call), tool, call.WorkspaceId, refusal);
        return (McpToolResults.Error(refusal), "denied", false);
    }

    /// <summary>Why the caller may not use a tool (the scope an API key lacks, or too weak a workspace role); null when they may.</summary>
    private static async Task<string?> RefusalAsync(McpCall call, string tool, string scope, string role, CancellationToken ct)
    {
        var caller = call.Caller;
        if (caller.IsWorkspaceBound && !ApiKeyScopes.Grants(caller.Scopes, scope))
        {
            return $"'{tool}' needs the scope '{scope}', which this API key or service account lacks.";
        }
        if (!await caller.HasRoleAsync(call.WorkspaceId, role, ct))
        {
            return $"'{tool}' needs the {role} role in the workspace; the caller is {await caller.RoleInAsync(call.WorkspaceId, ct) ?? "not a member"}.";
        }
        return null;
    }

    /// <summary>Argument names only: values can hold anything, secrets included.</summary>
    private static async Task AuditAsync(McpCall call, string tool, JsonElement arguments, string outcome, TimeSpan duration)
    {
        await call.Http.RequestServices.GetRequiredService<AuditTrail>().RecordAsync(
            AuditAction,
            outcome switch { "ok" => AuditOutcomes.Success, "denied" => AuditOutcomes.Denied, _ => AuditOutcomes.Failure },
            call.WorkspaceId, tool,
            new
            {
                via = ToolCaller.ViaMcp,
                result = outcome,
                durationMs = Math.Round(duration.TotalMilliseconds, 1),
                arguments = arguments.ValueKind == JsonValueKind.Object ? arguments.EnumerateObject().Select(p => p.Name).ToArray() : [],
            });
    }

    /// <summary>
    /// The request's caller and workspace. Stateless, so the handler runs inside the HTTP request (its services are the
    /// request's), and the endpoint's access rules have already resolved both or answered 401/403/404.
    /// </summary>
    private static async ValueTask<McpCall> BindAsync(IServiceProvider? services)
    {
        var http = services?.GetRequiredService<IHttpContextAccessor>().HttpContext
            ?? throw new InvalidOperationException("/mcp is served statelessly: a tool request must run inside its HTTP request.");
        return new McpCall(http, await Caller.BindAsync(http), await CurrentWorkspace.BindAsync(http));
    }

    /// <summary>The tool servers' catalog, when this installation has one; without it only the platform tools are offered.</summary>
    private static IToolCatalog? Catalog(McpCall call) => call.Http.RequestServices.GetService<IToolCatalog>();

    private static ILogger Logger(McpCall call) => call.Http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(McpToolRequests));
}
