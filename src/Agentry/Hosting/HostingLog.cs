namespace Agentry.Hosting;

internal static partial class HostingLog
{
    [LoggerMessage(1, LogLevel.Error, "Unhandled exception for {Method} {Path}")]
    public static partial void UnhandledException(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(2, LogLevel.Information, "Rejected {Method} {Path} with {Status} {Code}: {Reason}")]
    public static partial void BadRequest(ILogger logger, int status, string code, string method, string path, string reason);

    [LoggerMessage(3, LogLevel.Debug, "Client aborted {Method} {Path}")]
    public static partial void RequestAborted(ILogger logger, string method, string path);

    [LoggerMessage(4, LogLevel.Information, "Applied {Count} database migration(s) on {Provider}")]
    public static partial void MigrationsApplied(ILogger logger, int count, string provider);

    [LoggerMessage(5, LogLevel.Warning, "Redis is unreachable; rate limits are enforced per node until it answers again")]
    public static partial void RateLimitsInProcess(ILogger logger, Exception exception);

    [LoggerMessage(6, LogLevel.Information, "Redis answers again; rate limits are shared by all nodes")]
    public static partial void RateLimitsInRedisAgain(ILogger logger);
}
