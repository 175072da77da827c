namespace Agentry.Chat;

internal static partial class ChatLog
{
    [LoggerMessage(1, LogLevel.Warning, "Conversation {ConversationId}: reply {ReplyId} failed")]
    public static partial void ReplyFailed(ILogger logger, Guid conversationId, Guid replyId, Exception exception);

    [LoggerMessage(2, LogLevel.Warning, "Conversation {ConversationId}: reply {ReplyId} was taken over (lease lapsed or conversation deleted); generation stopped")]
    public static partial void ReplyLost(ILogger logger, Guid conversationId, Guid replyId);

    [LoggerMessage(3, LogLevel.Warning, "Conversation {ConversationId}: writing reply events failed; trying again")]
    public static partial void AppendFailed(ILogger logger, Guid conversationId, Exception exception);

    [LoggerMessage(4, LogLevel.Warning, "Conversation {ConversationId}: storing the finished reply failed (try {Try}): {Error}")]
    public static partial void FinishRetry(ILogger logger, Guid conversationId, int @try, string error);

    [LoggerMessage(5, LogLevel.Error, "Conversation {ConversationId}: reply {ReplyId} could not be stored; the sweeper will fail it when its lease lapses")]
    public static partial void FinishFailed(ILogger logger, Guid conversationId, Guid replyId, Exception exception);

    [LoggerMessage(6, LogLevel.Information, "Failed {Count} replies whose generating node stopped")]
    public static partial void Swept(ILogger logger, int count);

    [LoggerMessage(7, LogLevel.Warning, "Sweeping lapsed replies failed")]
    public static partial void SweepFailed(ILogger logger, Exception exception);
}
