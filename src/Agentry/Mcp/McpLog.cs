namespace Agentry.Mcp;

internal static partial class McpLog
{
    [LoggerMessage(1, LogLevel.Warning, "/mcp: the workspace's bridged tools could not be listed; only the platform tools are offered")]
    public static partial void BridgedListFailed(ILogger logger, Exception exception);

    [LoggerMessage(2, LogLevel.Information, "/mcp: tool {Tool} refused in workspace {WorkspaceId}: {Reason}")]
    public static partial void Refused(ILogger logger, string tool, Guid workspaceId, string reason);
}
