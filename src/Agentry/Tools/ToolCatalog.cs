using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace Agentry.Tools;

/// <summary>
/// A tool that one of a workspace's MCP servers offers. <see cref="QualifiedName"/> (<c>{server}__{tool}</c>) is how agents'
/// allow-lists and models name it: unique in the workspace, and within the characters every model API accepts for a
/// function name.
/// </summary>
public sealed record ToolDescriptor(
    Guid ServerId, string Server, string Name, string? Description, JsonElement InputSchema, bool RequiresApproval)
{
    public const string Separator = "__";

    public string QualifiedName => Qualify(Server, Name);

    public static string Qualify(string server, string tool) => server + Separator + tool;

    /// <summary>Splits a qualified name at its first separator (server names cannot hold one); false when it has none.</summary>
    public static bool TrySplit(string qualifiedName, out string server, out string tool)
    {
        var at = qualifiedName.IndexOf(Separator, StringComparison.Ordinal);
        (server, tool) = at > 0 ? (qualifiedName[..at], qualifiedName[(at + Separator.Length)..]) : ("", "");
        return at > 0 && tool.Length > 0;
    }
}

/// <summary>Who calls a tool, for the audit trail: a person or key through the API or <c>/mcp</c>, or an agent's task.</summary>
public sealed record ToolCaller(Guid WorkspaceId, Guid? UserId, Guid? KeyId, Guid? AgentId, Guid? TaskId, string Via)
{
    public const string ViaApi = "api";
    public const string ViaMcp = "mcp";
    public const string ViaAgent = "agent";
}

/// <summary>
/// The tools of the workspaces' registered MCP servers, and the one governed way to call them: the API, <c>/mcp</c> and
/// agents all call through <see cref="CallAsync"/>, which checks the arguments against the tool's input schema, applies
/// the call timeout and records an audit event per call.
/// </summary>
public interface IToolCatalog
{
    /// <summary>Every tool of the workspace's enabled servers (a server that cannot be reached contributes none, and says why in its status).</summary>
    ValueTask<IReadOnlyList<ToolDescriptor>> ListAsync(Guid workspaceId, CancellationToken ct);

    /// <summary>One tool by server and tool name; null when the workspace has no such server or the server no such tool.</summary>
    ValueTask<ToolDescriptor?> FindAsync(Guid workspaceId, string server, string tool, CancellationToken ct);

    /// <summary>
    /// Calls <paramref name="tool"/>. Throws <see cref="ToolArgumentsException"/> when the arguments do not match the
    /// tool's input schema, <see cref="TimeoutException"/> when the call outlives its timeout, and
    /// <see cref="Hosting.DependencyUnavailableException"/> when the server cannot be reached. A tool that runs and
    /// reports an error returns normally, with <see cref="CallToolResult.IsError"/> set.
    /// </summary>
    ValueTask<CallToolResult> CallAsync(ToolDescriptor tool, JsonElement arguments, ToolCaller caller, CancellationToken ct);
}

/// <summary>The arguments do not match the tool's input schema; <see cref="Errors"/> maps each failing location to what is wrong (a 400).</summary>
public sealed class ToolArgumentsException(string tool, IReadOnlyDictionary<string, string[]> errors)
    : Exception($"The arguments for tool '{tool}' do not match its input schema.")
{
    public IReadOnlyDictionary<string, string[]> Errors { get; } = errors;
}
