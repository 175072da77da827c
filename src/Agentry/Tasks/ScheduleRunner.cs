using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// On every worker node: finds schedules whose next slot is due and fires each slot once across all nodes.
/// A node claims a slot by moving the schedule's <see cref="Schedule.NextRunAt"/> on with a conditional update
/// (<c>WHERE NextRunAt = slot</c>) and submits the slot's task in the same transaction, so a slot's claim and
/// its task commit together or not at all. The task's idempotency key names the slot as well, so even a claim
/// that somehow repeated would find the slot's task instead of making a second one.
/// </summary>
internal sealed class ScheduleRunner(
    IServiceScopeFactory scopes,
    TaskSignal signal,
    TaskMetrics metrics,
    TimeProvider clock,
    IOptions<ScheduleOptions> options,
    ILogger<ScheduleRunner> logger) : BackgroundService
{
    /// <summary>Bounds one scan's catch-up of a schedule whose slots come faster than scans.</summary>
    private const int MaxSlotsPerScan = 100;

    private readonly ScheduleOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Interval, clock);
        try
        {
            do
            {
                try
                {
                    await RunDueAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    TaskLog.ScheduleScanFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunDueAsync(CancellationToken ct)
    {
        var now = clock.UtcNow();
        List<Schedule> due;
        await using (var scope = scopes.CreateAsyncScope())
        {
            due = await scope.ServiceProvider.GetRequiredService<AppDbContext>().Schedules.AsNoTracking()
                .Where(s => s.NextRunAt <= now && s.Enabled)
                .OrderBy(s => s.NextRunAt)
                .Take(_options.BatchSize)
                .ToListAsync(ct);
        }
        var fired = 0;
        foreach (var schedule in due)
        {
            try
            {
                fired += await RunAsync(schedule, now, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                TaskLog.ScheduleFailed(logger, schedule.Id, ex);
            }
        }
        if (fired > 0)
        {
            signal.Pulse(); // the tasks are committed now; wake this node's workers
        }
    }

    /// <summary>Fires the schedule's due slots in order until none is due or another node claimed one first.</summary>
    private async Task<int> RunAsync(Schedule schedule, DateTime now, CancellationToken ct)
    {
        var slots = ScheduleClock.Of(schedule);
        var slot = schedule.NextRunAt!.Value;
        var fired = 0;
        for (var i = 0; i < MaxSlotsPerScan && slot <= now; i++)
        {
            // Missed slots (every worker was down) collapse into the latest due one: one task, not a burst.
            var fire = now - slot > _options.MissedAfter && slots.Latest(now) is { } latest && latest > slot ? latest : slot;
            var next = slots.Next(fire);
            if (!await FireAsync(schedule, slot, fire, next, ct))
            {
                break;
            }
            fired++;
            if (next is not { } following)
            {
                break;
            }
            slot = following;
        }
        return fired;
    }

    /// <summary>Claims <paramref name="slot"/> and submits the task for <paramref name="fire"/> in one transaction; false when the claim failed.</summary>
    private async Task<bool> FireAsync(Schedule schedule, DateTime slot, DateTime fire, DateTime? next, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // A racing node's update waits for this transaction (row lock), then no longer matches: it fires nothing.
        var claimed = await db.Schedules.Where(s => s.Id == schedule.Id && s.NextRunAt == slot && s.Enabled)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.NextRunAt, next).SetProperty(s => s.LastRunAt, fire), ct);
        if (claimed == 0)
        {
            return false;
        }
        // The submission joins the transaction: it writes through this scope's context.
        var outcome = await scope.ServiceProvider.GetRequiredService<TaskSubmission>().SubmitAsync(
            schedule.WorkspaceId, [new(schedule.ToTask(fire), ScheduleContracts.IdempotencyKey(schedule.Id, fire), ScheduleId: schedule.Id)], null, ct, transaction: db);
        Guid? taskId = null;
        if (outcome.Problem is { } problem)
        {
            // The agent was deleted or can no longer run here: the slot is spent, and each refusal is logged.
            TaskLog.ScheduleRefused(logger, schedule.Id, fire, problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "refused");
        }
        else
        {
            taskId = outcome.Tasks[0].Task.Id;
        }
        await db.Schedules.Where(s => s.Id == schedule.Id).ExecuteUpdateAsync(u => u.SetProperty(s => s.LastTaskId, taskId), ct);
        await transaction.CommitAsync(ct);
        metrics.SlotFired(taskId is not null);
        return true;
    }
}
