namespace Agentry.Tasks;

internal static partial class TaskLog
{
    [LoggerMessage(1, LogLevel.Warning, "Could not take tasks from the queue; trying again")]
    public static partial void TakeFailed(ILogger logger, Exception exception);

    [LoggerMessage(2, LogLevel.Error, "Could not record the outcome of task {TaskId}; its lease will lapse and it will run again")]
    public static partial void RecordFailed(ILogger logger, Guid taskId, Exception exception);

    [LoggerMessage(3, LogLevel.Warning, "Task {TaskId}: recording its outcome failed (try {Try}): {Error}")]
    public static partial void RecordRetry(ILogger logger, Guid taskId, int @try, string error);

    [LoggerMessage(4, LogLevel.Warning, "Task {TaskId} was no longer leased to this worker when it finished; its outcome was dropped")]
    public static partial void LeaseLost(ILogger logger, Guid taskId);

    [LoggerMessage(5, LogLevel.Warning, "Renewing task leases failed")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "Task {TaskId}: its handler failed")]
    public static partial void HandlerFailed(ILogger logger, Guid taskId, Exception exception);

    [LoggerMessage(7, LogLevel.Information, "Returned {Count} tasks with lapsed leases to the queue")]
    public static partial void Swept(ILogger logger, int count);

    [LoggerMessage(8, LogLevel.Warning, "Sweeping lapsed task leases failed")]
    public static partial void SweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(9, LogLevel.Warning, "Looking for due schedules failed")]
    public static partial void ScheduleScanFailed(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "Schedule {ScheduleId}: firing its due slot failed; the next scan tries again")]
    public static partial void ScheduleFailed(ILogger logger, Guid scheduleId, Exception exception);

    [LoggerMessage(11, LogLevel.Warning, "Schedule {ScheduleId}: the task for slot {Slot:o} was refused: {Reason}")]
    public static partial void ScheduleRefused(ILogger logger, Guid scheduleId, DateTime slot, string reason);

    [LoggerMessage(12, LogLevel.Information, "Consuming tasks from RabbitMQ queue {Queue}")]
    public static partial void Consuming(ILogger logger, string queue);

    [LoggerMessage(13, LogLevel.Warning, "The RabbitMQ consumer channel closed ({Reason}); reconnecting")]
    public static partial void ConsumerLost(ILogger logger, string reason);

    [LoggerMessage(14, LogLevel.Warning, "Consuming tasks from RabbitMQ failed ({Failures} tries so far); reconnecting")]
    public static partial void ConsumeFailed(ILogger logger, int failures, Exception exception);

    [LoggerMessage(15, LogLevel.Warning, "Dropped a RabbitMQ message {MessageId} that names no task")]
    public static partial void MalformedMessage(ILogger logger, string? messageId);

    [LoggerMessage(16, LogLevel.Warning, "Acking the RabbitMQ message of task {TaskId} failed; the broker will redeliver it and the redelivery is dropped")]
    public static partial void AckFailed(ILogger logger, Guid taskId, Exception exception);

    [LoggerMessage(17, LogLevel.Warning, "Relaying the task outbox to RabbitMQ failed ({Failures} tries so far); trying again")]
    public static partial void RelayFailed(ILogger logger, int failures, Exception exception);

    [LoggerMessage(18, LogLevel.Warning, "{Count} due tasks waited too long without being claimed ({Waiting} messages in the queue); publishing them again")]
    public static partial void Republishing(ILogger logger, int count, uint waiting);

    [LoggerMessage(19, LogLevel.Warning, "Task {TaskId}: tool {Tool} failed; the model is told it failed")]
    public static partial void ToolFailed(ILogger logger, Guid taskId, string tool, Exception exception);
}
