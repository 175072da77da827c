using System.Collections.Concurrent;
using System.Text.Json;
using Agentry.Tests.Chat;
using Agentry.Tests.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tools;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Agentry.Tests.Mcp;

/// <summary>
/// An app on SQLite with the tiny GGUF model (<c>local/tiny</c>, real inference) for <c>chat_with_agent</c> and llm
/// agents, and a workspace tool catalog backed by a real MCP server: <see cref="EverythingToolCatalog"/>.
/// </summary>
public sealed class McpEndpointFixture : SqliteFixture
{
    private readonly string _model = ChatSettings.NewModelFile();

    public EverythingToolCatalog Catalog { get; } = new();

    private readonly Dictionary<string, string?> _knowledge = KnowledgeSettings.For(TempFiles.Directory());

    protected override IReadOnlyDictionary<string, string?> Extra => _knowledge.With(ChatSettings.For(_model));

    protected override Action<IServiceCollection> Services => services => services.AddSingleton<IToolCatalog>(Catalog);

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Catalog.DisposeAsync();
    }
}

/// <summary>
/// A test-only <see cref="IToolCatalog"/>: the tools of <c>@modelcontextprotocol/server-everything</c>, run over stdio
/// with the SDK's <see cref="StdioClientTransport"/>, offered as server <c>everything</c> in the workspaces
/// <see cref="Offer"/> names (none other). It records every call's <see cref="ToolCaller"/> and refuses arguments that
/// lack a property the tool's schema requires, as the real catalog's schema check does.
/// </summary>
public sealed class EverythingToolCatalog : IToolCatalog, IAsyncDisposable
{
    public const string Server = "everything";

    private static readonly Guid ServerId = Guid.CreateVersion7();
    private readonly ConcurrentDictionary<Guid, bool> _workspaces = new();
    private readonly SemaphoreSlim _connect = new(1, 1);
    private McpClient? _client;

    public ConcurrentQueue<(ToolDescriptor Tool, ToolCaller Caller)> Calls { get; } = new();

    public void Offer(Guid workspaceId) => _workspaces[workspaceId] = true;

    public async ValueTask<IReadOnlyList<ToolDescriptor>> ListAsync(Guid workspaceId, CancellationToken ct)
    {
        if (!_workspaces.ContainsKey(workspaceId))
        {
            return [];
        }
        var client = await ClientAsync(ct);
        return [.. (await client.ListToolsAsync(cancellationToken: ct)).Select(t => new ToolDescriptor(
            ServerId, Server, t.Name, t.Description, t.ProtocolTool.InputSchema, false))];
    }

    public async ValueTask<ToolDescriptor?> FindAsync(Guid workspaceId, string server, string tool, CancellationToken ct) =>
        server == Server ? (await ListAsync(workspaceId, ct)).FirstOrDefault(t => t.Name == tool) : null;

    public async ValueTask<CallToolResult> CallAsync(ToolDescriptor tool, JsonElement arguments, ToolCaller caller, CancellationToken ct)
    {
        Calls.Enqueue((tool, caller));
        var given = arguments.ValueKind == JsonValueKind.Object ? arguments.EnumerateObject().Select(p => p.Name).ToHashSet() : [];
        var missing = tool.InputSchema.TryGetProperty("required", out var required)
            ? required.EnumerateArray().Select(r => r.GetString()!).Where(r => !given.Contains(r)).ToList()
            : [];
        if (missing.Count > 0)
        {
            throw new ToolArgumentsException(tool.QualifiedName, missing.ToDictionary(m => m, _ => new[] { "Required properties are missing." }));
        }
        var client = await ClientAsync(ct);
        return await client.CallToolAsync(
            new CallToolRequestParams { Name = tool.Name, Arguments = arguments.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) }, ct);
    }

    private async Task<McpClient> ClientAsync(CancellationToken ct)
    {
        await _connect.WaitAsync(ct);
        try
        {
            return _client ??= await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = Server, Command = McpTestServers.Node, Arguments = [McpTestServers.Everything, "stdio"],
            }), cancellationToken: ct);
        }
        finally
        {
            _connect.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
    }
}
