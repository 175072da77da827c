using System.ComponentModel.DataAnnotations;
using System.Text.Json;

namespace Agentry.Tasks;

/// <summary>One task to submit. In a batch, <see cref="IdempotencyKey"/> plays the part of the header.</summary>
public sealed record SubmitTaskRequest
{
    [Required]
    public Guid? AgentId { get; init; }

    /// <summary>Any JSON value; the handler receives it as is. Defaults to <c>{}</c>.</summary>
    public JsonElement? Input { get; init; }

    /// <summary>0-9, higher first; default 5.</summary>
    [Range(0, 9)]
    public int? Priority { get; init; }

    /// <summary>Not before this time (UTC); default now.</summary>
    public DateTime? RunAt { get; init; }

    [Range(1, 100)]
    public int? MaxAttempts { get; init; }

    /// <summary>Per attempt; defaults to the agent's own time limit (an <c>llm</c> agent's plus 10 s: its run ends at its own limit first).</summary>
    [Range(1, 86_400)]
    public int? TimeoutSeconds { get; init; }

    /// <summary>Only in a batch item; a single submission takes the <c>Idempotency-Key</c> header.</summary>
    [StringLength(AgentTask.IdempotencyKeyMaxLength, MinimumLength = 1)]
    public string? IdempotencyKey { get; init; }
}

public sealed record SubmitTaskBatchRequest
{
    [Required, MinLength(1), MaxLength(TaskContracts.MaxBatch)]
    public List<SubmitTaskRequest> Tasks { get; init; } = [];
}

/// <summary>The outcome of one batch item: the task, and whether this request created it or found it under its idempotency key.</summary>
public sealed record BatchItemResult(int Index, bool Created, TaskResponse Task);

public sealed record BatchResponse(IReadOnlyList<BatchItemResult> Items);

/// <summary>The workspace's tasks by status: the queue's depth (queued, running, waiting for approval) and how they ended.</summary>
public sealed record TaskCountsResponse(int Queued, int Running, int Waiting, int Succeeded, int Dead, int Cancelled);

public sealed record TaskResponse(
    Guid Id, Guid AgentId, int AgentVersion, string Kind, string Status, int Priority, DateTime RunAt, int Attempts, int MaxAttempts,
    int TimeoutSeconds, JsonElement Input, JsonElement? Result, string? LastError, string? Reason, string? IdempotencyKey,
    bool CancelRequested, Guid? ScheduleId, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt);

public sealed record TaskEventResponse(long Seq, string Type, DateTime At, JsonElement? Data);

/// <summary>A page of a task's events; <see cref="Final"/> says no more will come.</summary>
public sealed record TaskEventPage(IReadOnlyList<TaskEventResponse> Items, long Last, bool Final);

internal static class TaskContracts
{
    public const int MaxBatch = 1_000;
    public const int DefaultPriority = 5;

    public static TaskResponse ToResponse(this AgentTask t) => new(
        t.Id, t.AgentId, t.AgentVersion, t.Kind, t.Status, t.Priority, t.RunAt, t.Attempts, t.MaxAttempts, t.TimeoutSeconds,
        Parse(t.Input)!.Value, Parse(t.Result), t.LastError, t.Reason, t.IdempotencyKey, t.CancelRequested, t.ScheduleId, t.CreatedAt,
        t.StartedAt, t.FinishedAt);

    public static TaskEventResponse ToResponse(this TaskEvent e) => new(e.Seq, e.Type, e.At, Parse(e.Data));

    private static JsonElement? Parse(string? json) => json is null ? null : JsonSerializer.Deserialize<JsonElement>(json);
}
