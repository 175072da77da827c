namespace Agentry.Tools;

internal static partial class ToolsLog
{
    [LoggerMessage(1, LogLevel.Information, "MCP server {Server} ({ServerId}) started: {ToolCount} tools")]
    public static partial void Started(ILogger logger, string server, Guid serverId, int toolCount);

    [LoggerMessage(2, LogLevel.Warning, "MCP server {Server} ({ServerId}) could not be started (failure {Failures} in a row); next try in {Delay}: {Error}")]
    public static partial void StartFailed(ILogger logger, string server, Guid serverId, int failures, TimeSpan delay, string error);

    [LoggerMessage(3, LogLevel.Warning, "MCP server {Server} ({ServerId}) session ended unexpectedly; restart in {Delay}: {Error}")]
    public static partial void SessionEnded(ILogger logger, string server, Guid serverId, TimeSpan delay, string error);

    [LoggerMessage(4, LogLevel.Error, "MCP server {Server} ({ServerId}) failed {Failures} times in a row; no more automatic restarts until it is used again: {Error}")]
    public static partial void GaveUp(ILogger logger, string server, Guid serverId, int failures, string error);

    [LoggerMessage(5, LogLevel.Information, "MCP server {Server} ({ServerId}) stopped")]
    public static partial void Stopped(ILogger logger, string server, Guid serverId);

    [LoggerMessage(6, LogLevel.Information, "MCP server {Server} stderr: {Line}")]
    public static partial void Stderr(ILogger logger, string server, string line);

    [LoggerMessage(7, LogLevel.Debug, "MCP server {Server} ({ServerId}) says its tool list changed")]
    public static partial void ToolsChanged(ILogger logger, string server, Guid serverId);

    [LoggerMessage(8, LogLevel.Warning, "Stopping MCP server {Server} ({ServerId}) failed")]
    public static partial void StopFailed(ILogger logger, string server, Guid serverId, Exception exception);
}
