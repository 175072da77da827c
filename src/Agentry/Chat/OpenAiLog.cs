namespace Agentry.Chat;

internal static partial class OpenAiLog
{
    [LoggerMessage(1, LogLevel.Error, "Model {Model} failed in mid-answer on /v1/chat/completions; the stream ended with an error event")]
    public static partial void StreamFailed(ILogger logger, string model, Exception exception);
}
