using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tasks;

/// <summary>
/// One thing that happened to a task. Sequence numbers are strictly increasing per task and are taken
/// from <see cref="AgentTask.LastEventSeq"/> in the same transaction as the change they describe, so
/// a reader that resumes after sequence N misses nothing and sees nothing twice. Sequence 1 is always
/// <c>queued</c> at the task's creation and is not stored: readers add it from the task row, so creating a
/// task stays one insert.
/// </summary>
public sealed class TaskEvent
{
    public Guid TaskId { get; init; }
    public long Seq { get; init; }
    public Guid WorkspaceId { get; init; }

    /// <summary>One of <see cref="TaskEventTypes"/>.</summary>
    public required string Type { get; init; }

    public DateTime At { get; init; }

    /// <summary>Details as JSON (error, next run time, progress, result), or null.</summary>
    public string? Data { get; init; }
}

public static class TaskEventTypes
{
    public const string Queued = "queued";
    public const string Started = "started";
    public const string Progress = "progress";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Retrying = "retrying";
    public const string Dead = "dead";
    public const string Cancelled = "cancelled";
    public const string CancelRequested = "cancel_requested";
    public const string Requeued = "requeued";
    public const string ApprovalRequested = "approval.requested";
    public const string ApprovalApproved = "approval.approved";
    public const string ApprovalDenied = "approval.denied";
}

internal sealed class TaskEventConfiguration : IEntityTypeConfiguration<TaskEvent>
{
    public void Configure(EntityTypeBuilder<TaskEvent> e)
    {
        e.ToTable("task_events");
        e.HasKey(x => new { x.TaskId, x.Seq });
        e.Property(x => x.Type).HasMaxLength(32);
        e.HasOne<AgentTask>().WithMany().HasForeignKey(x => x.TaskId).OnDelete(DeleteBehavior.Cascade);
    }
}
