namespace Agentry.Sockets;

internal static partial class SocketLog
{
    [LoggerMessage(1, LogLevel.Information, "WebSocket connection closed: the client let its send queue stay full for {Timeout} (too slow)")]
    public static partial void TooSlow(ILogger logger, TimeSpan timeout);

    [LoggerMessage(2, LogLevel.Information, "WebSocket connection closed: the client sent a message over {Limit} bytes")]
    public static partial void MessageTooBig(ILogger logger, int limit);

    [LoggerMessage(3, LogLevel.Warning, "WebSocket stream {Stream} {Id} failed after sequence {Seq}; the client was told to subscribe again")]
    public static partial void StreamFailed(ILogger logger, string stream, Guid id, long seq, Exception exception);

    [LoggerMessage(4, LogLevel.Warning, "WebSocket request '{Op}' failed")]
    public static partial void RequestFailed(ILogger logger, string op, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "WebSocket connection dropped without a closing handshake")]
    public static partial void Dropped(ILogger logger);
}
