using Agentry.Agents;
using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tasks;

/// <summary>
/// One job for one agent. The row is the truth for every queue provider: status, lease and attempts
/// change only through conditional updates (see <see cref="TaskStore"/>), so a repeat or a late
/// worker can never move a task backwards.
/// </summary>
public sealed class AgentTask : ICreatedRow
{
    public const int IdempotencyKeyMaxLength = 200;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public Guid AgentId { get; init; }

    /// <summary>The agent version the task runs with, fixed when it is submitted.</summary>
    public int AgentVersion { get; init; }

    /// <summary>The agent's kind, which picks the handler.</summary>
    public required string Kind { get; init; }

    /// <summary>One of <see cref="AgentTaskStatus"/>.</summary>
    public required string Status { get; set; }

    /// <summary>0-9; higher runs first within a workspace.</summary>
    public int Priority { get; init; }

    /// <summary>Not before this time: the requested start, or the next attempt after a back-off.</summary>
    public DateTime RunAt { get; set; }

    public int Attempts { get; set; }
    public int MaxAttempts { get; init; }
    public int TimeoutSeconds { get; init; }

    /// <summary>The input as JSON.</summary>
    public required string Input { get; init; }

    /// <summary>The handler's result as JSON, once succeeded.</summary>
    public string? Result { get; set; }

    public string? LastError { get; set; }

    /// <summary>Why the task ended the way it did (set with every final status).</summary>
    public string? Reason { get; set; }

    public string? IdempotencyKey { get; init; }

    /// <summary>Hash of the request that created the task under <see cref="IdempotencyKey"/>.</summary>
    public string? RequestHash { get; init; }

    /// <summary>The claim that runs it now; every write by a worker names it, so a lapsed worker's late write is a no-op.</summary>
    public Guid? LeaseId { get; set; }
    public DateTime? LeaseExpiresAt { get; set; }

    /// <summary>Set when a running task is asked to stop; its worker sees it with the next heartbeat.</summary>
    public bool CancelRequested { get; set; }

    /// <summary>The sequence number of the newest event; the next event takes the one after.</summary>
    public long LastEventSeq { get; set; }

    /// <summary>The schedule that created the task, if one did.</summary>
    public Guid? ScheduleId { get; init; }

    public DateTime CreatedAt { get; init; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public Guid? CreatedBy { get; init; }
}

/// <summary>
/// Task statuses. A failed attempt that will be retried goes back to <see cref="Queued"/> with a later
/// run time; a run that needs a person's approval pauses in <see cref="Waiting"/> (no lease, no worker) until
/// the approval is decided; <see cref="Succeeded"/>, <see cref="Dead"/> and <see cref="Cancelled"/> are final.
/// </summary>
public static class AgentTaskStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Waiting = "waiting";
    public const string Succeeded = "succeeded";
    public const string Dead = "dead";
    public const string Cancelled = "cancelled";

    public static readonly string[] All = [Queued, Running, Waiting, Succeeded, Dead, Cancelled];

    public static bool IsFinal(string status) => status is Succeeded or Dead or Cancelled;
}

internal sealed class AgentTaskConfiguration : IEntityTypeConfiguration<AgentTask>
{
    public void Configure(EntityTypeBuilder<AgentTask> task)
    {
        task.ToTable("tasks");
        task.HasKey(t => t.Id);
        task.Property(t => t.Id).ValueGeneratedNever();
        task.Property(t => t.Kind).HasMaxLength(16);
        task.Property(t => t.Status).HasMaxLength(16);
        task.Property(t => t.IdempotencyKey).HasMaxLength(AgentTask.IdempotencyKeyMaxLength);
        task.Property(t => t.RequestHash).HasMaxLength(64);
        task.HasOne<Workspace>().WithMany().HasForeignKey(t => t.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        task.HasOne<Agent>().WithMany().HasForeignKey(t => t.AgentId).OnDelete(DeleteBehavior.Cascade);
        // The claim: the next due tasks of one workspace, in priority then run-time order.
        task.HasIndex(t => new { t.Status, t.WorkspaceId, t.Priority, t.RunAt }).IsDescending(false, false, true, false);
        // The sweeper: running tasks whose lease has lapsed.
        task.HasIndex(t => new { t.Status, t.LeaseExpiresAt });
        // The workspace's list, newest first, optionally by status.
        task.HasIndex(t => new { t.WorkspaceId, t.Id });
        task.HasIndex(t => new { t.WorkspaceId, t.Status, t.Id });
        // The list of one schedule's tasks.
        task.HasIndex(t => new { t.ScheduleId, t.Id }).HasFilter("\"ScheduleId\" IS NOT NULL");
        task.HasIndex(t => new { t.WorkspaceId, t.IdempotencyKey }).IsUnique().HasFilter("\"IdempotencyKey\" IS NOT NULL");
    }
}
