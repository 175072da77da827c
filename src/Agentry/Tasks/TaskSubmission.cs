using System.Security.Cryptography;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Tasks;

/// <summary>
/// Creates tasks: checks each against its agent, resolves idempotency keys, and writes the tasks and their
/// outbox rows (with RabbitMQ) in one transaction, which <see cref="TaskWriter"/> shares with concurrent submissions
/// (or, when the caller has one open, in the caller's). The first event, <c>queued</c>, is implied by the row
/// (see <see cref="TaskEvent"/>), so a submission is a single insert. The API and the scheduler
/// both submit through here.
/// </summary>
internal sealed class TaskSubmission(
    IServiceProvider services, IFusionCache cache, TimeProvider clock, IOptions<TaskOptions> options, TaskWriter writer, TaskSignal signal,
    TaskMetrics metrics, IEnumerable<ITaskHandler> handlers)
{
    /// <summary>One task to create; <paramref name="Field"/> prefixes its field errors (<c>tasks[3].</c> in a batch).</summary>
    public sealed record Item(SubmitTaskRequest Request, string? IdempotencyKey, string Field = "", Guid? ScheduleId = null);

    /// <summary>The tasks, in the items' order, each with whether this call created it; or the problem that stopped them all.</summary>
    public sealed record Outcome(IReadOnlyList<(bool Created, AgentTask Task)> Tasks, ProblemHttpResult? Problem);

    private const int InsertTries = 3;

    private AppDbContext? _db;

    /// <summary>
    /// The scope's context, rented only when a submission needs it (an agent or an idempotency key not in the cache,
    /// a caller's transaction): a plain submission is written by <see cref="TaskWriter"/> with its own connection.
    /// </summary>
    private AppDbContext Db => _db ??= services.GetRequiredService<AppDbContext>();

    /// <summary>
    /// Submits the items; with <paramref name="transaction"/> (this scope's context, holding an open transaction:
    /// the scheduler's slot claim) the tasks are written in that transaction instead of a shared group commit.
    /// </summary>
    public async Task<Outcome> SubmitAsync(
        Guid workspaceId, IReadOnlyList<Item> items, Guid? actor, CancellationToken ct, AppDbContext? transaction = null)
    {
        var agents = new Dictionary<Guid, AgentResponse?>();
        foreach (var id in items.Select(i => i.Request.AgentId!.Value).Distinct())
        {
            agents[id] = await AgentEndpoints.FindAsync(workspaceId, id, () => Db, cache, ct);
        }
        var errors = new Dictionary<string, string[]>();
        foreach (var item in items)
        {
            var agent = agents[item.Request.AgentId!.Value];
            if (agent is null)
            {
                errors[$"{item.Field}agentId"] = [$"Agent {item.Request.AgentId} was not found in this workspace."];
            }
            else if (!handlers.Any(h => h.Kind == agent.Kind))
            {
                return Refused(Problem.Unprocessable("agent_not_runnable",
                    $"{Where(item)}agent '{agent.Name}' is a {agent.Kind} agent, and {agent.Kind} agents cannot run tasks on this installation yet."));
            }
        }
        if (errors.Count > 0)
        {
            return Refused(Problem.Validation(errors));
        }

        for (var attempt = 1; ; attempt++)
        {
            var outcome = await TryInsertAsync(workspaceId, items, agents!, actor, transaction, ct);
            if (outcome is not null)
            {
                return outcome;
            }
            _db?.ChangeTracker.Clear();
            if (attempt == InsertTries)
            {
                return Refused(Problem.Conflict("idempotency_key_in_use",
                    "Another request with the same Idempotency-Key is still being processed; retry it shortly."));
            }
        }
    }

    /// <summary>One try; null when a concurrent request took one of the idempotency keys first (then try again: it is now found).</summary>
    private async Task<Outcome?> TryInsertAsync(
        Guid workspaceId, IReadOnlyList<Item> items, Dictionary<Guid, AgentResponse> agents, Guid? actor, AppDbContext? transaction, CancellationToken ct)
    {
        var keys = items.Where(i => i.IdempotencyKey is not null).Select(i => i.IdempotencyKey!).Distinct().ToList();
        var existing = keys.Count == 0
            ? []
            : await Db.Tasks.AsNoTracking().Where(t => t.WorkspaceId == workspaceId && keys.Contains(t.IdempotencyKey!)).ToDictionaryAsync(t => t.IdempotencyKey!, ct);
        var now = clock.UtcNow();
        var results = new List<(bool, AgentTask)>(items.Count);
        var created = new List<AgentTask>();
        foreach (var item in items)
        {
            var hash = item.IdempotencyKey is null ? null : Hash(item.Request);
            if (item.IdempotencyKey is not null && existing.TryGetValue(item.IdempotencyKey, out var found))
            {
                if (found.RequestHash != hash)
                {
                    return Refused(Problem.Unprocessable("idempotency_key_reused",
                        $"{Where(item)}the Idempotency-Key '{item.IdempotencyKey}' was used before with a different request."));
                }
                results.Add((false, found));
                continue;
            }
            var task = NewTask(workspaceId, item, agents[item.Request.AgentId!.Value], hash, actor, now);
            created.Add(task);
            results.Add((true, task));
            if (item.IdempotencyKey is not null)
            {
                existing[item.IdempotencyKey] = task; // a repeat within the batch gets this one
            }
        }
        if (created.Count == 0)
        {
            return new Outcome(results, null);
        }
        try
        {
            await WriteAsync(created, transaction, ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation() && keys.Count > 0)
        {
            return null;
        }
        metrics.Submitted(created.Count);
        signal.Pulse();
        return new Outcome(results, null);
    }

    /// <summary>Through the shared group commit, or in the caller's open transaction when it passed its context.</summary>
    private async Task WriteAsync(List<AgentTask> created, AppDbContext? transaction, CancellationToken ct)
    {
        if (transaction is null)
        {
            await writer.WriteAsync(created);
            return;
        }
        writer.AddTo(transaction, created);
        await transaction.SaveChangesAsync(ct);
    }

    private AgentTask NewTask(Guid workspaceId, Item item, AgentResponse agent, string? hash, Guid? actor, DateTime now)
    {
        var r = item.Request;
        var runAt = r.RunAt is { } at ? DateTime.SpecifyKind(at.Kind == DateTimeKind.Local ? at.ToUniversalTime() : at, DateTimeKind.Utc) : now;
        return new AgentTask
        {
            Id = Ids.New(),
            WorkspaceId = workspaceId,
            AgentId = agent.Id,
            AgentVersion = agent.Version,
            Kind = agent.Kind,
            Status = AgentTaskStatus.Queued,
            Priority = r.Priority ?? TaskContracts.DefaultPriority,
            RunAt = runAt.AddTicks(-(runAt.Ticks % TimeSpan.TicksPerMicrosecond)),
            MaxAttempts = r.MaxAttempts ?? options.Value.DefaultMaxAttempts,
            TimeoutSeconds = r.TimeoutSeconds ?? DefaultTimeoutSeconds(agent),
            Input = r.Input is { } input ? input.GetRawText() : "{}",
            IdempotencyKey = item.IdempotencyKey,
            RequestHash = hash,
            LastEventSeq = 1,
            ScheduleId = item.ScheduleId,
            CreatedAt = now,
            CreatedBy = actor,
        };
    }

    /// <summary>What makes two submissions "the same request": every field but the key itself.</summary>
    private static string Hash(SubmitTaskRequest request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request with { IdempotencyKey = null }, JsonSerializerOptions.Web)));

    /// <summary>The agent's time limit; for an <c>llm</c> agent, whose handler enforces that limit itself, a little more (see <see cref="LlmTaskHandler.TimeLimitGraceSeconds"/>).</summary>
    private static int DefaultTimeoutSeconds(AgentResponse agent) =>
        agent.Limits.TimeoutSeconds + (agent.Kind == AgentKinds.Llm ? LlmTaskHandler.TimeLimitGraceSeconds : 0);

    private static string Where(Item item) => item.Field.Length == 0 ? "The " : $"In {item.Field.TrimEnd('.')}, the ";

    private static Outcome Refused(ProblemHttpResult problem) => new([], problem);
}
