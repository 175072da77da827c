using System.Diagnostics;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Agentry.Tools;

/// <summary>
/// The tools of the workspaces' registered MCP servers, from this node's supervised sessions, and the one governed way
/// to call them: the arguments are checked against the tool's schema, the server's timeout applies, and every call,
/// whatever its outcome, is counted and audited (argument names only, never values). The workspace's server rows are
/// cached (tagged <see cref="Tag"/>, dropped by every change through the API), so a call reads no row on its way.
/// </summary>
internal sealed class McpToolCatalog(
    McpSupervisor supervisor, IServiceScopeFactory scopes, IFusionCache cache, ToolMetrics metrics, TimeProvider clock) : IToolCatalog
{
    public const string AuditAction = "tool.call";

    public async ValueTask<IReadOnlyList<ToolDescriptor>> ListAsync(Guid workspaceId, CancellationToken ct)
    {
        var servers = await LoadAsync(workspaceId, ct);
        var lists = await Task.WhenAll(servers.Select(async server =>
        {
            try
            {
                return Describe(server, await supervisor.For(server).ToolsAsync(ct));
            }
            catch (DependencyUnavailableException)
            {
                return []; // its status says why
            }
        }));
        return [.. lists.SelectMany(l => l)];
    }

    public async ValueTask<ToolDescriptor?> FindAsync(Guid workspaceId, string server, string tool, CancellationToken ct)
    {
        if ((await LoadAsync(workspaceId, ct)).FirstOrDefault(s => s.Name == server) is not { } row)
        {
            return null;
        }
        var tools = await supervisor.For(row).ToolsAsync(ct);
        return tools.FirstOrDefault(t => t.Name == tool) is { } found ? Describe(row, [found])[0] : null;
    }

    public async ValueTask<CallToolResult> CallAsync(ToolDescriptor tool, JsonElement arguments, ToolCaller caller, CancellationToken ct)
    {
        var started = clock.GetTimestamp();
        var outcome = "unavailable";
        try
        {
            var result = await CallCoreAsync(tool, arguments, caller, ct);
            outcome = result.IsError == true ? "tool_error" : "ok";
            return result;
        }
        catch (ToolArgumentsException)
        {
            outcome = "invalid_arguments";
            throw;
        }
        catch (TimeoutException)
        {
            outcome = "timeout";
            throw;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        finally
        {
            var duration = clock.GetElapsedTime(started);
            metrics.Called(tool.Server, tool.Name, outcome, duration);
            await AuditAsync(tool, arguments, caller, outcome, duration);
        }
    }

    private async Task<CallToolResult> CallCoreAsync(ToolDescriptor tool, JsonElement arguments, ToolCaller caller, CancellationToken ct)
    {
        if (arguments.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            arguments = JsonSerializer.SerializeToElement(new { });
        }
        if (ToolArguments.Check(tool, arguments) is { Count: > 0 } errors)
        {
            throw new ToolArgumentsException(tool.QualifiedName, errors);
        }
        // The server as it is now, in the caller's workspace: deleted or disabled since the tool was found means unavailable.
        var server = (await LoadAsync(caller.WorkspaceId, ct)).FirstOrDefault(s => s.Id == tool.ServerId)
            ?? throw new DependencyUnavailableException($"MCP server '{tool.Server}' is no longer registered or enabled in this workspace.");
        var session = supervisor.For(server);
        var client = await session.ConnectAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(server.CallTimeoutSeconds));
        try
        {
            return await client.CallToolAsync(
                new CallToolRequestParams { Name = tool.Name, Arguments = arguments.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) },
                timeout.Token);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            // The SDK has told the server the request is cancelled; the session stays.
            throw new DependencyTimeoutException($"Tool '{tool.QualifiedName}' did not finish within {server.CallTimeoutSeconds} s.", ex);
        }
        catch (McpProtocolException ex)
        {
            // The server refused the request (e.g. its own argument checks): the tool ran as far as it could, and reports why.
            return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = ex.Message }] };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await session.BreakAsync(client, ex);
            throw new DependencyUnavailableException($"MCP server '{tool.Server}' failed during the call: {SupervisedServer.Describe(ex)}", ex);
        }
    }

    private async Task AuditAsync(ToolDescriptor tool, JsonElement arguments, ToolCaller caller, string outcome, TimeSpan duration)
    {
        // Queued, not committed on the call's path: a read of the audit trail writes the queue first (see AuditQueue).
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<AuditTrail>().QueueAsync(
            new AuditActor(caller.UserId, caller.KeyId, null), AuditAction, outcome == "ok" ? AuditOutcomes.Success : AuditOutcomes.Failure,
            caller.WorkspaceId, tool.QualifiedName,
            new
            {
                via = caller.Via,
                result = outcome,
                durationMs = Math.Round(duration.TotalMilliseconds, 1),
                arguments = ToolArguments.NamesOf(arguments),
                agentId = caller.AgentId,
                taskId = caller.TaskId,
            });
    }

    /// <summary>The cache tag of a workspace's server rows: whatever changes a row removes it.</summary>
    public static string Tag(Guid workspaceId) => $"mcp-servers:{workspaceId}";

    /// <summary>The workspace's enabled servers by name, as stored (cached; shared by callers, so never changed).</summary>
    private ValueTask<McpServer[]> LoadAsync(Guid workspaceId, CancellationToken ct) =>
        cache.GetOrSetAsync(
            $"mcp-servers:{workspaceId}",
            async token =>
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                return await db.McpServers.AsNoTracking()
                    .Where(s => s.WorkspaceId == workspaceId && s.Enabled)
                    .OrderBy(s => s.Name).ToArrayAsync(token);
            },
            tags: [Tag(workspaceId)],
            token: ct);

    private static ToolDescriptor[] Describe(McpServer server, IReadOnlyList<Tool> tools)
    {
        var approval = McpServerDefinition.Parse(server.Definition).ApprovalTools;
        return [.. tools.Select(t => new ToolDescriptor(
            server.Id, server.Name, t.Name, t.Description, t.InputSchema, server.RequireApproval || approval.Contains(t.Name)))];
    }
}
