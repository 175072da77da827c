using Agentry.Identity;
using Microsoft.Extensions.Options;

namespace Agentry.Tools;

/// <summary>
/// This node's sessions with the registered MCP servers, one per server, each from the server's current configuration:
/// a session from an older version (changed here or on another node) is stopped and replaced on its next use. Stops
/// them all when the host stops.
/// </summary>
internal sealed class McpSupervisor : IHostedService, IAsyncDisposable
{
    private readonly Dictionary<Guid, SupervisedServer> _servers = [];
    private readonly Lock _gate = new();
    private readonly McpServerRuntime _runtime;
    private bool _stopped;

    public McpSupervisor(IOptions<ToolsOptions> options, McpSecretProtection secrets, EgressGuard egress, TimeProvider clock, ILogger<McpSupervisor> logger) =>
        _runtime = new McpServerRuntime(options.Value, secrets, egress, clock, logger);

    /// <summary>The session for <paramref name="server"/> as configured now (the row must be the server's current one).</summary>
    public SupervisedServer For(McpServer server)
    {
        SupervisedServer? outdated = null;
        SupervisedServer session;
        lock (_gate)
        {
            if (_stopped)
            {
                throw new Hosting.DependencyUnavailableException($"MCP server '{server.Name}' is not available: this node is shutting down.");
            }
            if (_servers.TryGetValue(server.Id, out var current) && current.Version == server.UpdatedAt)
            {
                return current;
            }
            outdated = current;
            session = _servers[server.Id] = new SupervisedServer(server, _runtime);
        }
        if (outdated is not null)
        {
            _ = StopQuietlyAsync(outdated);
        }
        return session;
    }

    /// <summary>The server's status on this node: <c>disabled</c>, or its session's, or <c>idle</c> when it has none yet.</summary>
    public McpServerStatus StatusOf(McpServer server)
    {
        if (!server.Enabled)
        {
            return new(SupervisedServer.Disabled, null, 0, 0, null);
        }
        lock (_gate)
        {
            return _servers.TryGetValue(server.Id, out var session) && session.Version == server.UpdatedAt
                ? session.Status
                : new(SupervisedServer.Idle, null, 0, 0, null);
        }
    }

    /// <summary>How long until the named server's session may be started again (zero when it may now or has no session here).</summary>
    public TimeSpan RetryAfter(Guid workspaceId, string name)
    {
        lock (_gate)
        {
            return _servers.Values.FirstOrDefault(s => s.WorkspaceId == workspaceId && s.Name == name)?.RetryAfter ?? TimeSpan.Zero;
        }
    }

    /// <summary>Stops the server's session (its process too); the next use starts one from the configuration then current.</summary>
    public async Task StopAsync(Guid serverId)
    {
        SupervisedServer? session;
        lock (_gate)
        {
            _servers.Remove(serverId, out session);
        }
        if (session is not null)
        {
            await session.DisposeAsync();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        SupervisedServer[] all;
        lock (_gate)
        {
            _stopped = true;
            all = [.. _servers.Values];
            _servers.Clear();
        }
        await Task.WhenAll(all.Select(s => s.DisposeAsync().AsTask()));
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None);

    private async Task StopQuietlyAsync(SupervisedServer session)
    {
        try
        {
            await session.DisposeAsync();
        }
        catch (Exception ex)
        {
            ToolsLog.StopFailed(_runtime.Logger, session.Name, session.Id, ex);
        }
    }
}
