using Agentry.Data;
using Agentry.Tasks;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Infrastructure;

public sealed partial class AgentryApp
{
    /// <summary>Writes a queued task straight into the database, for tests that need one to exist without running it.</summary>
    public async Task<Guid> InsertTaskAsync(Guid workspaceId, Guid agentId, DateTime? runAt = null)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = DateTime.UtcNow;
        var task = new AgentTask
        {
            Id = Guid.CreateVersion7(),
            WorkspaceId = workspaceId,
            AgentId = agentId,
            AgentVersion = 1,
            Kind = "tool",
            Status = AgentTaskStatus.Queued,
            RunAt = runAt ?? now.AddYears(1),
            MaxAttempts = 1,
            TimeoutSeconds = 60,
            Input = "{}",
            LastEventSeq = 1,
            CreatedAt = now,
        };
        db.Tasks.Add(task);
        await db.SaveChangesAsync();
        return task.Id;
    }

    /// <summary>Writes a pending approval of a task straight into the database, for tests that need one to read.</summary>
    public async Task<Guid> InsertApprovalAsync(Guid workspaceId, Guid taskId, Guid agentId)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var approval = new Agentry.Tools.Approval
        {
            Id = Guid.CreateVersion7(),
            WorkspaceId = workspaceId,
            TaskId = taskId,
            AgentId = agentId,
            Tool = "matrix__noop",
            Arguments = "{}",
            CallId = $"task-{taskId}",
            Status = Agentry.Tools.ApprovalStatus.Pending,
            RequestedAt = DateTime.UtcNow,
        };
        db.Approvals.Add(approval);
        await db.SaveChangesAsync();
        return approval.Id;
    }

    /// <summary>Writes a disabled schedule straight into the database, for tests whose agents no handler can run.</summary>
    public async Task<Guid> InsertScheduleAsync(Guid workspaceId, Guid agentId)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = DateTime.UtcNow;
        var schedule = new Schedule
        {
            Id = Guid.CreateVersion7(),
            WorkspaceId = workspaceId,
            AgentId = agentId,
            Name = $"schedule-{Guid.NewGuid():N}",
            Cron = "0 0 1 1 *",
            TimeZone = "UTC",
            Input = "{}",
            Priority = 5,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Schedules.Add(schedule);
        await db.SaveChangesAsync();
        return schedule.Id;
    }
}
