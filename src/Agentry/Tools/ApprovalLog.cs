namespace Agentry.Tools;

internal static partial class ApprovalLog
{
    [LoggerMessage(1, LogLevel.Warning,
        "Task {TaskId}: the call approved by approval {ApprovalId} ({Tool}) is started again (start {Attempt}); an earlier run stopped between the call and its result's commit, so it may have run before")]
    public static partial void CallRepeated(ILogger logger, Guid taskId, Guid approvalId, string tool, int attempt);

    [LoggerMessage(2, LogLevel.Warning, "Task {TaskId}: agent {AgentId} asked for tool '{Tool}', which it may not call; refused: {Reason}")]
    public static partial void ToolRefused(ILogger logger, Guid taskId, Guid agentId, string tool, string reason);
}
