using Agentry.Data;
using Agentry.Tools;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Tasks;

/// <summary>What deciding an approval found.</summary>
public enum ApprovalChange { Done, NotFound, AlreadyDecided, TaskNotWaiting }

/// <summary>A person's decision on an approval: who (id and email, for reasons and events), and why.</summary>
public sealed record ApprovalDecision(bool Approve, Guid UserId, string UserName, string? Reason)
{
    /// <summary>How a denial reads where it ends a task or answers a model: "denied by &lt;person&gt;: &lt;reason&gt;".</summary>
    public string Denial => Reason is { Length: > 0 } why ? $"denied by {UserName}: {why}" : $"denied by {UserName}";
}

/// <summary>
/// The task transitions of approvals: a run pausing for one, a person deciding one, a cancel while one waits. Each
/// writes the approval row and the task's change (with its events) in one transaction.
/// </summary>
internal sealed partial class TaskStore
{
    private const string CancelledWaiting = "Cancelled while waiting for an approval.";

    /// <summary>
    /// Pauses a running task for a person's approval: it waits, without a lease, and the attempt does not count (a
    /// pause is not a failure); the approval is stored and <c>approval.requested</c> appended with it. False when the
    /// task is no longer ours (then nothing is stored).
    /// </summary>
    public async Task<bool> WaitAsync(LeasedTask task, ApprovalRequest request, CancellationToken ct)
    {
        var now = clock.UtcNow();
        var approval = new Approval
        {
            Id = Ids.New(),
            WorkspaceId = task.WorkspaceId,
            TaskId = task.Id,
            AgentId = task.AgentId,
            Tool = request.Tool,
            Arguments = request.Arguments.GetRawText(),
            CallId = request.CallId,
            Status = ApprovalStatus.Pending,
            RequestedAt = now,
            RunState = request.RunState,
        };
        var rows = await TransitionAsync($"""
            "Status" = 'waiting', "Attempts" = "Attempts" - 1, {Released}
            """, """
            "Id" = @id AND "LeaseId" = @lease AND "Status" = 'running'
            """, [Event(TaskEventTypes.ApprovalRequested, new { approvalId = approval.Id, tool = approval.Tool, callId = approval.CallId })],
            outbox: false, "\"Id\"", r => r.GetGuid(0), new() { ["@id"] = task.Id, ["@lease"] = task.LeaseId, ["@at"] = now }, ct,
            alongside: async (db, token) =>
            {
                db.Approvals.Add(approval);
                await db.SaveChangesAsync(token);
            });
        return rows.Count == 1;
    }

    /// <summary>
    /// Decides a pending approval. Approved, or denied for an <c>llm</c> agent (which is told and goes on), the task goes
    /// back to the queue to continue its run; denied for a <c>tool</c> agent, whose one call it was, the task ends
    /// <c>cancelled</c> with the denial as its reason. An approval decided before (or whose task was cancelled), or one whose task is not waiting, changes nothing.
    /// </summary>
    public async Task<(ApprovalChange Change, Approval? Approval)> DecideAsync(Guid workspaceId, Guid id, ApprovalDecision decision, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var approval = await db.Approvals.FirstOrDefaultAsync(a => a.Id == id && a.WorkspaceId == workspaceId, ct);
        if (approval is null || approval.Status != ApprovalStatus.Pending)
        {
            return (approval is null ? ApprovalChange.NotFound : ApprovalChange.AlreadyDecided, approval);
        }
        var now = clock.UtcNow();
        var status = decision.Approve ? ApprovalStatus.Approved : ApprovalStatus.Denied;
        // Conditional, so of two people deciding at once exactly one does.
        var decided = await db.Approvals.Where(a => a.Id == id && a.Status == ApprovalStatus.Pending).ExecuteUpdateAsync(s => s
            .SetProperty(a => a.Status, status).SetProperty(a => a.DecidedBy, decision.UserId).SetProperty(a => a.DecidedByName, decision.UserName)
            .SetProperty(a => a.DecidedAt, now).SetProperty(a => a.Reason, decision.Reason), ct);
        if (decided == 0)
        {
            return (ApprovalChange.AlreadyDecided, await db.Approvals.AsNoTracking().FirstAsync(a => a.Id == id, ct));
        }
        var kind = await db.Tasks.Where(t => t.Id == approval.TaskId).Select(t => t.Kind).FirstAsync(ct);
        var data = new { approvalId = id, tool = approval.Tool, callId = approval.CallId, decidedBy = decision.UserName, reason = decision.Reason };
        var parameters = new Dictionary<string, object?> { ["@id"] = approval.TaskId, ["@at"] = now };
        const string waiting = """
            "Id" = @id AND "Status" = 'waiting'
            """;
        var ends = !decision.Approve && kind == Agents.AgentKinds.Tool;
        var notices = 0;
        List<Guid> moved;
        if (ends)
        {
            var reason = char.ToUpperInvariant(decision.Denial[0]) + decision.Denial[1..];
            parameters["@reason"] = reason;
            (moved, notices) = await TransitionInAsync(db, """
                "Status" = 'cancelled', "Reason" = @reason, "FinishedAt" = @at
                """, waiting, [Event(TaskEventTypes.ApprovalDenied, data), Event(TaskEventTypes.Cancelled, new { reason })],
                outbox: false, "\"Id\"", r => r.GetGuid(0), parameters, final: true, ct);
        }
        else
        {
            (moved, _) = await TransitionInAsync(db, """
                "Status" = 'queued', "RunAt" = @at
                """, waiting, [Event(decision.Approve ? TaskEventTypes.ApprovalApproved : TaskEventTypes.ApprovalDenied, data)],
                _outbox, "\"Id\"", r => r.GetGuid(0), parameters, final: false, ct);
        }
        if (moved.Count == 0)
        {
            // Not waiting (any more): nothing would continue the run, so the decision is not taken (the transaction rolls back).
            return (ApprovalChange.TaskNotWaiting, approval);
        }
        await transaction.CommitAsync(ct);
        if (notices > 0 || !ends)
        {
            signal.Pulse();
        }
        return (ApprovalChange.Done, await db.Approvals.AsNoTracking().FirstAsync(a => a.Id == id, ct));
    }

    /// <summary>Cancels a waiting task at once; its pending approval is cancelled with it (nobody needs to decide any more).</summary>
    private Task<bool> CancelWaitingAsync(Guid workspaceId, Guid id, CancellationToken ct) =>
        ChangeAsync(workspaceId, id, "'waiting'", $"""
            "Status" = 'cancelled', "Reason" = '{CancelledWaiting}', "FinishedAt" = @at
            """, Event(TaskEventTypes.Cancelled, new { reason = CancelledWaiting }), outbox: false, ct, final: true,
            alongside: (db, token) => db.Approvals.Where(a => a.TaskId == id && a.Status == ApprovalStatus.Pending)
                .ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, ApprovalStatus.Cancelled), token));
}
