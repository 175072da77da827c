using System.Data.Common;
using System.Text.Json;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>A task a worker holds: what its handler needs, and the lease every later write must name.</summary>
public sealed record LeasedTask(
    Guid Id, Guid WorkspaceId, Guid AgentId, int AgentVersion, string Kind, string Input, int Attempts, int MaxAttempts,
    int TimeoutSeconds, int Priority, Guid LeaseId, DateTime CreatedAt, DateTime RunAt);

/// <summary>What a cancel, requeue or discard request found.</summary>
public enum TaskChange { Done, Requested, NotFound, WrongStatus }

/// <summary>
/// Every change of a task's state after it is created: the claim, the heartbeat, the outcome, the
/// sweeper and the API's cancel, requeue and discard. Each is one conditional update that also appends
/// its events (and, with RabbitMQ, its outbox row) atomically, so concurrent workers, nodes and
/// requests cannot both win and a late writer changes nothing.
/// </summary>
internal sealed partial class TaskStore(
    IServiceScopeFactory scopes, IOptions<StorageOptions> storage, IOptions<TaskOptions> options, TimeProvider clock,
    CompletionNotices notices, TaskSignal signal, IEnumerable<ITaskEndHook> hooks)
{
    private const string Leased = """
        "Id", "WorkspaceId", "AgentId", "AgentVersion", "Kind", "Input", "Attempts", "MaxAttempts", "TimeoutSeconds", "Priority", "LeaseId", "CreatedAt", "RunAt"
        """;
    private const string Released = """ "LeaseId" = NULL, "LeaseExpiresAt" = NULL """;

    private readonly TaskSql _sql = new(storage.Value.Provider == StorageOptions.Postgres);
    private readonly bool _outbox = options.Value.Provider == TaskOptions.RabbitMq;
    private readonly TaskOptions _options = options.Value;
    private readonly ITaskEndHook[] _hooks = hooks.ToArray();

    /// <summary>
    /// Leases up to <paramref name="max"/> due tasks of the first workspace after <paramref name="afterWorkspace"/>
    /// that has any, in priority then run-time order. Workers walk the workspaces round-robin this way, so one
    /// workspace's flood cannot starve another's tasks.
    /// </summary>
    public Task<List<LeasedTask>> LeaseNextAsync(Guid afterWorkspace, int max, CancellationToken ct)
    {
        var where = $"""
            "Id" IN (SELECT "Id" FROM tasks WHERE "Status" = 'queued' AND "RunAt" <= @at AND "WorkspaceId" = (
                SELECT "WorkspaceId" FROM tasks WHERE "Status" = 'queued' AND "RunAt" <= @at AND "WorkspaceId" > @after
                ORDER BY "WorkspaceId" LIMIT 1)
              ORDER BY "Priority" DESC, "RunAt", "Id" LIMIT @max{_sql.SkipLocked})
            """;
        return LeaseAsync(where, new() { ["@after"] = afterWorkspace, ["@max"] = max }, ct);
    }

    /// <summary>Leases one task named by a broker message, if it is still queued and due.</summary>
    public async Task<LeasedTask?> LeaseByIdAsync(Guid id, CancellationToken ct) =>
        (await LeaseAsync("""
            "Id" = @id AND "Status" = 'queued' AND "RunAt" <= @at
            """, new() { ["@id"] = id }, ct)).FirstOrDefault();

    /// <summary>Leases those of the named tasks (from a broker's deliveries) that are still queued and due, in one statement.</summary>
    public Task<List<LeasedTask>> LeaseByIdsAsync(IReadOnlyCollection<Guid> ids, CancellationToken ct) =>
        LeaseAsync($"""
            {_sql.InIds("\"Id\"", "@ids")} AND "Status" = 'queued' AND "RunAt" <= @at
            """, new() { ["@ids"] = _sql.Ids(ids) }, ct);

    private Task<List<LeasedTask>> LeaseAsync(string where, Dictionary<string, object?> parameters, CancellationToken ct)
    {
        var now = clock.UtcNow();
        parameters["@at"] = now;
        parameters["@lease"] = Ids.New();
        parameters["@expires"] = now + _options.Lease;
        return TransitionAsync(
            """
            "Status" = 'running', "LeaseId" = @lease, "LeaseExpiresAt" = @expires, "Attempts" = "Attempts" + 1, "StartedAt" = @at
            """,
            where,
            [new EventSpec(TaskEventTypes.Started, _sql.Json(("attempt", "\"Attempts\"")))],
            outbox: false, Leased, ReadLeased, parameters, ct);
    }

    /// <summary>Extends the leases of tasks still held; returns those still held, with whether each was asked to stop.</summary>
    public async Task<List<(Guid Id, bool CancelRequested)>> RenewAsync(IReadOnlyCollection<LeasedTask> held, CancellationToken ct)
    {
        if (held.Count == 0)
        {
            return [];
        }
        var sql = $"""
            UPDATE tasks SET "LeaseExpiresAt" = @expires
            WHERE {_sql.InIds("\"Id\"", "@ids")} AND {_sql.InIds("\"LeaseId\"", "@leases")} AND "Status" = 'running'
            RETURNING "Id", "CancelRequested"
            """;
        return await QueryAsync(sql, new Dictionary<string, object?>
            {
                ["@expires"] = clock.UtcNow() + _options.Lease,
                ["@ids"] = _sql.Ids(held.Select(t => t.Id)),
                ["@leases"] = _sql.Ids(held.Select(t => t.LeaseId).Distinct()),
            },
            r => (r.GetGuid(0), r.GetBoolean(1)), ct);
    }

    public async Task<bool> SucceedAsync(LeasedTask task, string? result, CancellationToken ct) =>
        await FinishAsync(task, """
            "Status" = 'succeeded', "Result" = @result, "Reason" = 'completed', "FinishedAt" = @at, "LastError" = NULL
            """, [Event(TaskEventTypes.Succeeded, new { attempt = task.Attempts })], new() { ["@result"] = result }, outbox: false, ct, final: true);

    /// <summary>Records a failed attempt: back to the queue after a back-off, or dead when no attempt is left or a retry cannot help.</summary>
    public async Task<bool> FailAsync(LeasedTask task, string error, bool retryable, CancellationToken ct)
    {
        var failed = Event(TaskEventTypes.Failed, new { attempt = task.Attempts, error, retryable });
        if (retryable && task.Attempts < task.MaxAttempts)
        {
            var delay = Backoff(task.Attempts);
            var runAt = clock.UtcNow() + delay;
            return await FinishAsync(task, """
                "Status" = 'queued', "RunAt" = @runAt, "LastError" = @error
                """, [failed, Event(TaskEventTypes.Retrying, new { attempt = task.Attempts + 1, runAt, delayMs = (long)delay.TotalMilliseconds })],
                new() { ["@runAt"] = runAt, ["@error"] = error }, outbox: _outbox, ct);
        }
        var reason = retryable ? $"Failed after {task.Attempts} attempts: {error}" : $"Failed and cannot be retried: {error}";
        return await FinishAsync(task, """
            "Status" = 'dead', "LastError" = @error, "Reason" = @reason, "FinishedAt" = @at
            """, [failed, Event(TaskEventTypes.Dead, new { attempts = task.Attempts, reason })],
            new() { ["@error"] = error, ["@reason"] = reason }, outbox: false, ct, final: true, unsuccessful: true);
    }

    public Task<bool> CancelledAsync(LeasedTask task, CancellationToken ct) =>
        FinishAsync(task, """
            "Status" = 'cancelled', "Reason" = 'Cancelled while running.', "FinishedAt" = @at
            """, [Event(TaskEventTypes.Cancelled, new { attempt = task.Attempts, reason = "Cancelled while running." })], [], outbox: false, ct, final: true, unsuccessful: true);

    /// <summary>Gives a task back unrun (its worker is stopping): the attempt does not count.</summary>
    public Task<bool> ReleaseAsync(LeasedTask task, CancellationToken ct) =>
        FinishAsync(task, """
            "Status" = 'queued', "Attempts" = "Attempts" - 1, "RunAt" = @at
            """, [Event(TaskEventTypes.Requeued, new { reason = "Its worker stopped before it finished." })], [], outbox: _outbox, ct);

    /// <summary>Appends a progress event (and renews the lease) while the task is still ours.</summary>
    public async Task<bool> ProgressAsync(LeasedTask task, string data, CancellationToken ct) =>
        (await TransitionAsync("""
            "LeaseExpiresAt" = @expires
            """, """
            "Id" = @id AND "LeaseId" = @lease AND "Status" = 'running'
            """, [new JsonEvent(TaskEventTypes.Progress, data)], false, "\"Id\"", r => r.GetGuid(0),
            new() { ["@id"] = task.Id, ["@lease"] = task.LeaseId, ["@at"] = clock.UtcNow(), ["@expires"] = clock.UtcNow() + _options.Lease }, ct)).Count == 1;

    /// <summary>How many tasks are queued, running, waiting and dead: the queue-depth gauge.</summary>
    public async Task<Dictionary<string, long>> DepthAsync(CancellationToken ct)
    {
        var rows = await QueryAsync("""
            SELECT "Status", COUNT(*) FROM tasks WHERE "Status" IN ('queued', 'running', 'waiting', 'dead') GROUP BY "Status"
            """, new Dictionary<string, object?>(), r => (Status: r.GetString(0), Count: r.GetInt64(1)), ct);
        return rows.ToDictionary(r => r.Status, r => r.Count);
    }

    private async Task<bool> FinishAsync(
        LeasedTask task, string set, EventSpec[] events, Dictionary<string, object?> parameters, bool outbox, CancellationToken ct,
        bool final = false, bool unsuccessful = false)
    {
        parameters["@id"] = task.Id;
        parameters["@lease"] = task.LeaseId;
        parameters["@at"] = clock.UtcNow();
        var rows = await TransitionAsync($"{set}, {Released}", """
            "Id" = @id AND "LeaseId" = @lease AND "Status" = 'running'
            """, events, outbox, "\"Id\"", r => r.GetGuid(0), parameters, ct,
            // The worker knows the agent: most tasks owe no notice, and then ending one stays a single statement.
            final && ((unsuccessful && _hooks.Any(h => h.Kind == task.Kind)) || await notices.OwedAsync(task, ct)));
        return rows.Count == 1;
    }

    /// <summary>
    /// Returns tasks whose lease lapsed (their worker died or lost the database) to the queue at once, or
    /// ends them dead when that was their last attempt, or cancelled when a cancel was waiting. Safe on
    /// every node at once: each row moves once.
    /// </summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        const string expired = """
            "Status" = 'running' AND "LeaseExpiresAt" < @at
            """;
        const string error = "Its worker stopped renewing the lease (crashed, stopped or lost the database).";
        var now = clock.UtcNow();
        var failed = new EventSpec(TaskEventTypes.Failed, _sql.Json(("attempt", "\"Attempts\"")) );
        Dictionary<string, object?> P() => new() { ["@at"] = now, ["@error"] = error };
        var cancelled = await TransitionAsync($"""
            "Status" = 'cancelled', "Reason" = 'Cancelled while running.', "FinishedAt" = @at, {Released}
            """, $"{expired} AND \"CancelRequested\"", [new EventSpec(TaskEventTypes.Cancelled)], false, "\"Id\"", r => r.GetGuid(0), P(), ct, final: true);
        var dead = await TransitionAsync($"""
            "Status" = 'dead', "LastError" = @error, "Reason" = @error, "FinishedAt" = @at, {Released}
            """, $"{expired} AND \"Attempts\" >= \"MaxAttempts\"", [failed, new EventSpec(TaskEventTypes.Dead)], false, "\"Id\"", r => r.GetGuid(0), P(), ct, final: true);
        var requeued = await TransitionAsync($"""
            "Status" = 'queued', "LastError" = @error, "RunAt" = @at, {Released}
            """, expired, [failed, new EventSpec(TaskEventTypes.Retrying, _sql.Json(("attempt", "\"Attempts\" + 1")))], _outbox, "\"Id\"", r => r.GetGuid(0), P(), ct);
        return cancelled.Count + dead.Count + requeued.Count;
    }

    /// <summary>Cancels a queued task at once; asks a running one to stop (its worker ends it <c>cancelled</c>).</summary>
    public async Task<TaskChange> CancelAsync(Guid workspaceId, Guid id, CancellationToken ct)
    {
        var reason = "Cancelled before it ran.";
        if (await ChangeAsync(workspaceId, id, "'queued'", $"""
            "Status" = 'cancelled', "Reason" = '{reason}', "FinishedAt" = @at
            """, Event(TaskEventTypes.Cancelled, new { reason }), outbox: false, ct, final: true))
        {
            return TaskChange.Done;
        }
        if (await CancelWaitingAsync(workspaceId, id, ct))
        {
            return TaskChange.Done;
        }
        if (await ChangeAsync(workspaceId, id, "'running' AND NOT \"CancelRequested\"", """
            "CancelRequested" = TRUE
            """, new EventSpec(TaskEventTypes.CancelRequested), outbox: false, ct))
        {
            return TaskChange.Requested;
        }
        return await StatusAsync(workspaceId, id, ct) switch
        {
            null => TaskChange.NotFound,
            AgentTaskStatus.Running => TaskChange.Requested,
            _ => TaskChange.WrongStatus,
        };
    }

    /// <summary>Puts a dead task back on the queue with all its attempts again.</summary>
    public async Task<TaskChange> RequeueAsync(Guid workspaceId, Guid id, CancellationToken ct) =>
        await ChangeAsync(workspaceId, id, "'dead'", """
            "Status" = 'queued', "Attempts" = 0, "RunAt" = @at, "Reason" = NULL, "FinishedAt" = NULL
            """, Event(TaskEventTypes.Requeued, new { reason = "Requeued from the dead letters." }), _outbox, ct)
            ? TaskChange.Done
            : await StatusAsync(workspaceId, id, ct) is null ? TaskChange.NotFound : TaskChange.WrongStatus;

    /// <summary>Ends a dead task for good: it leaves the dead letters as <c>cancelled</c>, reason "discarded".</summary>
    public async Task<TaskChange> DiscardAsync(Guid workspaceId, Guid id, CancellationToken ct) =>
        await ChangeAsync(workspaceId, id, "'dead'", """
            "Status" = 'cancelled', "Reason" = 'Discarded from the dead letters.', "FinishedAt" = @at
            """, Event(TaskEventTypes.Cancelled, new { reason = "Discarded from the dead letters." }), outbox: false, ct)
            ? TaskChange.Done
            : await StatusAsync(workspaceId, id, ct) is null ? TaskChange.NotFound : TaskChange.WrongStatus;

    private async Task<bool> ChangeAsync(
        Guid workspaceId, Guid id, string status, string set, EventSpec e, bool outbox, CancellationToken ct, bool final = false,
        Func<AppDbContext, CancellationToken, Task>? alongside = null) =>
        (await TransitionAsync(set, $"""
            "Id" = @id AND "WorkspaceId" = @ws AND "Status" = {status}
            """, [e], outbox, "\"Id\"", r => r.GetGuid(0),
            new() { ["@id"] = id, ["@ws"] = workspaceId, ["@at"] = clock.UtcNow() }, ct, final, alongside)).Count == 1;

    private async Task<string?> StatusAsync(Guid workspaceId, Guid id, CancellationToken ct) =>
        (await QueryAsync("""
            SELECT "Status" FROM tasks WHERE "Id" = @id AND "WorkspaceId" = @ws
            """, new Dictionary<string, object?> { ["@id"] = id, ["@ws"] = workspaceId }, r => r.GetString(0), ct)).FirstOrDefault();

    /// <summary>One statement on a pooled context of its own, read row by row.</summary>
    private async Task<List<T>> QueryAsync<T>(string sql, Dictionary<string, object?> parameters, Func<DbDataReader, T> read, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.OpenConnectionAsync(ct);
        return await TaskSql.ReadAsync(_sql.Command(db, sql, parameters), read, ct);
    }

    /// <param name="final">
    /// The change ends tasks (succeeded, dead, cancelled): it then also writes the completion notices they
    /// owe (see <see cref="CompletionNotices"/>) and lets the <see cref="ITaskEndHook"/>s follow, in the same transaction.
    /// </param>
    /// <param name="alongside">Written in the same transaction when the change moved a row (e.g. the approval a pause stores).</param>
    private async Task<List<T>> TransitionAsync<T>(
        string set, string where, IReadOnlyList<EventSpec> events, bool outbox, string returning, Func<DbDataReader, T> read,
        Dictionary<string, object?> parameters, CancellationToken ct, bool final = false, Func<AppDbContext, CancellationToken, Task>? alongside = null)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        if (!final && alongside is null)
        {
            return await _sql.TransitionAsync(db, set, where, Specs(events, parameters), outbox, returning, read, parameters, ct);
        }
        // An outer transaction: TaskSql joins it, so the change and what goes with it commit or fail together
        // (on PostgreSQL this turns one statement into three; ending a task is worth it).
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var (rows, queued) = await TransitionInAsync(db, set, where, events, outbox, returning, read, parameters, final, ct);
        if (rows.Count > 0 && alongside is not null)
        {
            await alongside(db, ct);
        }
        await transaction.CommitAsync(ct);
        if (queued > 0)
        {
            signal.Pulse();
        }
        return rows;
    }

    /// <summary>
    /// A transition inside the caller's transaction; for a final one, the notices it owes too (how many), and the
    /// <see cref="ITaskEndHook"/>s.
    /// </summary>
    private async Task<(List<T> Rows, int Notices)> TransitionInAsync<T>(
        AppDbContext db, string set, string where, IReadOnlyList<EventSpec> events, bool outbox, string returning, Func<DbDataReader, T> read,
        Dictionary<string, object?> parameters, bool final, CancellationToken ct)
    {
        var rows = await _sql.TransitionAsync(db, set, where, Specs(events, parameters), outbox, returning, r => (Id: r.GetGuid(0), Row: read(r)), parameters, ct);
        if (!final || rows.Count == 0)
        {
            return (rows.Select(r => r.Row).ToList(), 0);
        }
        var ended = rows.Select(r => r.Id).ToList();
        var queued = await notices.EnqueueAsync(db, ended, ct);
        foreach (var hook in _hooks)
        {
            await hook.EndedAsync(db, ended, ct);
        }
        return (rows.Select(r => r.Row).ToList(), queued);
    }

    /// <summary>Event data given as objects travel as parameters @e0, @e1, ….</summary>
    private static List<EventSpec> Specs(IReadOnlyList<EventSpec> events, Dictionary<string, object?> parameters)
    {
        var specs = new List<EventSpec>(events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            if (events[i] is JsonEvent json)
            {
                parameters[$"@e{i}"] = json.Json;
                specs.Add(new EventSpec(json.Type, $"@e{i}"));
            }
            else
            {
                specs.Add(events[i]);
            }
        }
        return specs;
    }

    /// <summary>
    /// The delay before attempt <paramref name="failedAttempt"/> + 1: doubling from the base, with up to half
    /// again of random jitter, capped. Each range starts above the previous one's end, so gaps never shrink.
    /// </summary>
    internal TimeSpan Backoff(int failedAttempt)
    {
        var exponential = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failedAttempt - 1, 30));
        var jittered = exponential * (1 + Random.Shared.NextDouble() * 0.5);
        return TimeSpan.FromMilliseconds(Math.Min(jittered, _options.RetryMaxDelay.TotalMilliseconds));
    }

    private static JsonEvent Event(string type, object data) => new(type, JsonSerializer.Serialize(data, JsonSerializerOptions.Web));

    private static LeasedTask ReadLeased(DbDataReader r) => new(
        r.GetGuid(0), r.GetGuid(1), r.GetGuid(2), r.GetInt32(3), r.GetString(4), r.GetString(5), r.GetInt32(6), r.GetInt32(7),
        r.GetInt32(8), r.GetInt32(9), r.GetGuid(10), DateTime.SpecifyKind(r.GetDateTime(11), DateTimeKind.Utc),
        DateTime.SpecifyKind(r.GetDateTime(12), DateTimeKind.Utc));

    /// <summary>An event whose data is known in C#, passed as a parameter.</summary>
    private sealed record JsonEvent(string Type, string Json) : EventSpec(Type);
}
