using System.Text.Json;

namespace Agentry.Tasks;

/// <summary>
/// Runs tasks of one agent kind. A handler is called at least once per task, so its effects should be
/// keyed by <see cref="TaskRun.TaskId"/>. Returning is success (the value is stored as the result);
/// throwing <see cref="TaskFailedException"/> says whether a retry can help; any other exception, and a
/// timeout, is retried.
/// </summary>
public interface ITaskHandler
{
    /// <summary>The agent kind it runs (<see cref="Agents.AgentKinds"/>).</summary>
    string Kind { get; }

    /// <param name="cancellationToken">Fires when the task is cancelled, times out, loses its lease or the worker stops.</param>
    Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken);
}

/// <summary>What a handler gets: the task, its input, and the agent's definition as it was submitted.</summary>
public sealed record TaskRun(
    Guid TaskId,
    Guid WorkspaceId,
    Guid AgentId,
    int AgentVersion,
    string AgentName,
    Agents.AgentDefinition Agent,
    JsonElement Input,
    int Attempt,
    int MaxAttempts,
    ITaskProgress Progress);

/// <summary>Appends progress events to the running task's event log.</summary>
public interface ITaskProgress
{
    ValueTask ReportAsync(object data, CancellationToken cancellationToken);
}

/// <summary>A handler's failure; <paramref name="retryable"/> false ends the task <c>dead</c> at once.</summary>
public sealed class TaskFailedException(string message, bool retryable, Exception? inner = null) : Exception(message, inner)
{
    public bool Retryable { get; } = retryable;
}

/// <summary>
/// A handler's call that needs a person's approval: the worker stores <see cref="Request"/> as a pending approval and
/// the task waits (<see cref="AgentTaskStatus.Waiting"/>) without counting the attempt. Once decided, the task runs
/// again and the handler finds the decision (the approval gate).
/// </summary>
public sealed class TaskWaitingException(ApprovalRequest request)
    : Exception($"The call of tool '{request.Tool}' waits for a person's approval.")
{
    public ApprovalRequest Request { get; } = request;
}

/// <summary>A call to hold: the tool's qualified name, its arguments, the call's id, and the run's state to resume from (JSON), if any.</summary>
public sealed record ApprovalRequest(string Tool, JsonElement Arguments, string CallId, string? RunState);
