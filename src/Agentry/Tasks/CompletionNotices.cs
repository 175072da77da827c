using System.Text.Json;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// Completion webhooks. When a task of an agent with <c>onComplete</c> reaches a final state, a notice
/// task of the internal kind <c>notify</c> is written in the same transaction (see
/// <see cref="TaskStore"/>), so a crash cannot lose it; the queue then delivers it like any task, with
/// its retries, back-off, dead letters and requeue. A notice about a notice is never sent.
/// </summary>
internal sealed class CompletionNotices(AgentVersions agents, TimeProvider clock, IOptions<TaskOptions> options)
{
    public const string Kind = "notify";
    public const string NoticeType = "task.completed";

    /// <summary>Each attempt's limit: a notice is one small POST.</summary>
    private const int TimeoutSeconds = 30;

    /// <summary>Whether ending a task of this agent version owes a notice (versions never change, so this is a cached lookup).</summary>
    public async ValueTask<bool> OwedAsync(LeasedTask task, CancellationToken ct) =>
        task.Kind != Kind && await agents.FindAsync(task.AgentId, task.AgentVersion, ct) is { Definition.OnComplete: not null };

    /// <summary>
    /// Adds a notice task for each of <paramref name="finished"/> (tasks just moved to a final state in
    /// <paramref name="db"/>'s open transaction) whose agent version has a completion hook; returns how many.
    /// </summary>
    public async Task<int> EnqueueAsync(AppDbContext db, IReadOnlyList<Guid> finished, CancellationToken ct)
    {
        var tasks = await db.Tasks.AsNoTracking()
            .Where(t => finished.Contains(t.Id) && t.Kind != Kind)
            .Select(t => new { t.Id, t.WorkspaceId, t.AgentId, t.AgentVersion, t.Status, t.Reason, t.LastError, t.Result, t.Attempts, t.FinishedAt })
            .ToListAsync(ct);
        var now = clock.UtcNow();
        var notices = new List<AgentTask>();
        foreach (var t in tasks)
        {
            if (await agents.FindAsync(t.AgentId, t.AgentVersion, ct) is not { Definition.OnComplete: not null })
            {
                continue;
            }
            using var result = t.Result is null ? null : JsonDocument.Parse(t.Result);
            var notice = new CompletionNotice(NoticeType, t.Id, t.AgentId, t.AgentVersion, t.Status, t.Reason, t.LastError, t.Attempts,
                result?.RootElement, t.FinishedAt ?? now);
            notices.Add(new AgentTask
            {
                Id = Ids.New(),
                WorkspaceId = t.WorkspaceId,
                AgentId = t.AgentId,
                AgentVersion = t.AgentVersion,
                Kind = Kind,
                Status = AgentTaskStatus.Queued,
                Priority = TaskContracts.DefaultPriority,
                RunAt = now,
                MaxAttempts = options.Value.DefaultMaxAttempts,
                TimeoutSeconds = TimeoutSeconds,
                Input = JsonSerializer.Serialize(notice, JsonSerializerOptions.Web),
                LastEventSeq = 1,
                CreatedAt = now,
            });
        }
        if (notices.Count == 0)
        {
            return 0;
        }
        db.Tasks.AddRange(notices);
        if (options.Value.Provider == TaskOptions.RabbitMq)
        {
            db.TaskOutbox.AddRange(notices.Select(n => new TaskOutboxEntry { TaskId = n.Id, Priority = n.Priority, DueAt = n.RunAt }));
        }
        await db.SaveChangesAsync(ct);
        return notices.Count;
    }
}

/// <summary>What a completion hook receives: the task, how it ended, and its result.</summary>
internal sealed record CompletionNotice(
    string Type, Guid TaskId, Guid AgentId, int AgentVersion, string Status, string? Reason, string? LastError, int Attempts,
    JsonElement? Result, DateTime FinishedAt);

/// <summary>
/// Delivers notice tasks to the agent version's <c>onComplete</c> URL, signed with its secret. The body is the
/// notice exactly as stored; the idempotency key is the notice task's id (one per final state reached).
/// </summary>
internal sealed class NotifyTaskHandler(WebhookDelivery delivery) : ITaskHandler
{
    public string Kind => CompletionNotices.Kind;

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var hook = run.Agent.OnComplete
            ?? throw new TaskFailedException($"Agent '{run.AgentName}' version {run.AgentVersion} has no completion webhook.", retryable: false);
        var about = run.Input.TryGetProperty("taskId", out var id) && id.TryGetGuid(out var taskId) ? taskId : run.TaskId;
        var body = JsonSerializer.SerializeToUtf8Bytes(run.Input, JsonSerializerOptions.Web);
        await delivery.PostAsync(hook, about, run.TaskId.ToString(), body, cancellationToken);
        return null; // the receiver's answer to a notice means nothing to the task it announced
    }
}
