using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Tools;

/// <summary>
/// What the task handlers ask about governed calls: the run's newest approval (where a resumed run continues), the
/// approved call run at most once per commit (keyed by the approval), and the audit record of a call the allow-list refused.
/// </summary>
internal sealed class ApprovalGate(IServiceScopeFactory scopes, TimeProvider clock, AuditTrail audit, ILogger<ApprovalGate> logger)
{
    /// <summary>The task's newest approval, or null when it never needed one.</summary>
    public async Task<Approval?> LatestAsync(Guid taskId, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return await db.Approvals.AsNoTracking().Where(a => a.TaskId == taskId).OrderByDescending(a => a.Id).FirstOrDefaultAsync(ct);
    }

    /// <summary>
    /// Runs the approved call unless its result is already stored, and stores the result (JSON) it returns. The start is
    /// committed before the call, so a run that stopped between a call and its result's commit is known: the call is
    /// then started again (at least once, never silently), the repeat logged and reported as a <c>progress</c> event
    /// (<c>approval.repeat</c>), and the approval's <see cref="Approval.CallAttempts"/> says how many times it started.
    /// </summary>
    public async Task<string> RunOnceAsync(Approval approval, TaskRun run, Func<CancellationToken, Task<string>> call, CancellationToken ct)
    {
        if (approval.Result is { } stored)
        {
            return stored;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.UtcNow();
        await db.Approvals.Where(a => a.Id == approval.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.CallStartedAt, now).SetProperty(a => a.CallAttempts, a => a.CallAttempts + 1), ct);
        var attempt = await db.Approvals.Where(a => a.Id == approval.Id).Select(a => a.CallAttempts).FirstAsync(ct);
        if (attempt > 1)
        {
            ApprovalLog.CallRepeated(logger, run.TaskId, approval.Id, approval.Tool, attempt);
            await run.Progress.ReportAsync(new { type = "approval.repeat", approvalId = approval.Id, tool = approval.Tool, attempt }, ct);
        }
        var result = await call(ct);
        // Not the run's token: the call happened, and its result must be kept even if the run is being stopped.
        await db.Approvals.Where(a => a.Id == approval.Id).ExecuteUpdateAsync(s => s.SetProperty(a => a.Result, result), CancellationToken.None);
        return result;
    }

    /// <summary>Records (audit <c>tool.refused</c>, and the log) that an agent asked for a tool it may not call; the call was not made.</summary>
    public Task RefusedAsync(TaskRun run, string tool, string reason)
    {
        ApprovalLog.ToolRefused(logger, run.TaskId, run.AgentId, tool, reason);
        return audit.RecordAsync(new AuditActor(null, null, $"agent {run.AgentName}"), AuditActions.ToolRefused, AuditOutcomes.Denied,
            run.WorkspaceId, AuditTargets.Task(run.TaskId), new { tool, reason, agentId = run.AgentId, agentVersion = run.AgentVersion });
    }
}
