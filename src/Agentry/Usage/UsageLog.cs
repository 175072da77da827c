namespace Agentry.Usage;

internal static partial class UsageLog
{
    [LoggerMessage(1, LogLevel.Warning, "Writing {Count} usage records failed; trying again")]
    public static partial void WriteFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(2, LogLevel.Error, "{Count} usage records were not written: the database failed while the node stopped")]
    public static partial void Lost(ILogger logger, int count, Exception exception);
}
