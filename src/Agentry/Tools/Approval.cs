using Agentry.Data;
using Agentry.Tasks;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tools;

/// <summary>
/// A tool call held for a person's decision. The task that made it waits (<see cref="AgentTaskStatus.Waiting"/>) until
/// the approval is decided; the row keeps what the run needs to continue (<see cref="RunState"/>) and, once the approved
/// call has run, its result, so a repeated run does not call again (see docs/approvals.md).
/// </summary>
public sealed class Approval : ICreatedRow
{
    public const int ToolMaxLength = 200;
    public const int CallIdMaxLength = 200;
    public const int ReasonMaxLength = 1_000;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public Guid TaskId { get; init; }
    public Guid AgentId { get; init; }

    /// <summary>The tool's qualified name (<c>{server}__{tool}</c>).</summary>
    public required string Tool { get; init; }

    /// <summary>The call's arguments as JSON.</summary>
    public required string Arguments { get; init; }

    /// <summary>The model's id for the call (an <c>llm</c> agent's), or the task's own for a <c>tool</c> agent.</summary>
    public required string CallId { get; init; }

    /// <summary>One of <see cref="ApprovalStatus"/>.</summary>
    public required string Status { get; set; }

    public DateTime RequestedAt { get; init; }
    public Guid? DecidedBy { get; set; }

    /// <summary>The deciding person's email, as reasons and events name them.</summary>
    public string? DecidedByName { get; set; }

    public DateTime? DecidedAt { get; set; }
    public string? Reason { get; set; }

    /// <summary>An <c>llm</c> run's state at the pause (messages, trace, usage, step) as JSON; null for a <c>tool</c> agent.</summary>
    public string? RunState { get; init; }

    /// <summary>When the approved call was last started; set (committed) before each call.</summary>
    public DateTime? CallStartedAt { get; set; }

    /// <summary>How many times the approved call was started: more than one only when a run stopped between a call and its result's commit.</summary>
    public int CallAttempts { get; set; }

    /// <summary>The approved call's result as JSON, committed once it returned; a repeated run reads it instead of calling again.</summary>
    public string? Result { get; set; }
}

public static class ApprovalStatus
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Denied = "denied";

    /// <summary>Its task was cancelled while it waited: nobody needs to decide any more.</summary>
    public const string Cancelled = "cancelled";

    public static readonly string[] All = [Pending, Approved, Denied, Cancelled];
}

internal sealed class ApprovalConfiguration : IEntityTypeConfiguration<Approval>
{
    public void Configure(EntityTypeBuilder<Approval> approval)
    {
        approval.ToTable("approvals");
        approval.HasKey(a => a.Id);
        approval.Property(a => a.Id).ValueGeneratedNever();
        approval.Property(a => a.Tool).HasMaxLength(Approval.ToolMaxLength);
        approval.Property(a => a.CallId).HasMaxLength(Approval.CallIdMaxLength);
        approval.Property(a => a.Status).HasMaxLength(16);
        approval.Property(a => a.DecidedByName).HasMaxLength(254);
        approval.Property(a => a.Reason).HasMaxLength(Approval.ReasonMaxLength);
        approval.HasOne<Workspace>().WithMany().HasForeignKey(a => a.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        approval.HasOne<AgentTask>().WithMany().HasForeignKey(a => a.TaskId).OnDelete(DeleteBehavior.Cascade);
        // The workspace's list, newest first, optionally by status.
        approval.HasIndex(a => new { a.WorkspaceId, a.Id });
        approval.HasIndex(a => new { a.WorkspaceId, a.Status, a.Id });
        // A run's newest approval, where it resumes.
        approval.HasIndex(a => new { a.TaskId, a.Id });
    }
}
