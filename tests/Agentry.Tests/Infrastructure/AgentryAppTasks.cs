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
        db.TaskEvents.Add(new TaskEvent { TaskId = task.Id, Seq = 1, WorkspaceId = workspaceId, Type = TaskEventTypes.Queued, At = now });
        await db.SaveChangesAsync();
        return task.Id;
    }
}
