using System.Data.Common;
using System.Threading.Channels;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Agentry.Tasks;

/// <summary>
/// Group commit for submissions. Submissions that arrive while a write is in flight are written together
/// next, in one transaction and one round trip, so under load a commit carries many tasks instead of one
/// (the database's commit, not the insert, is what limits single-row writes). Each submission is still
/// answered only after the commit that holds it, and it is atomic: a batch that fails on a unique key (a
/// concurrent Idempotency-Key) is written again submission by submission, so only the one that conflicts
/// fails. Any other failure fails the whole group, since the database may or may not have committed it.
/// </summary>
internal sealed class TaskWriter : IAsyncDisposable
{
    /// <summary>Submissions stop joining a group at this many rows (a batch submission alone may bring 1,000).</summary>
    private const int GroupRows = 1_000;

    /// <summary>
    /// PostgreSQL: one statement, whatever the group's size, so it is prepared once; its arrays are unnested
    /// into rows. The outbox rows (with RabbitMQ) are inserted by the same statement, so they commit together.
    /// </summary>
    private const string PostgresInsert = """
        INSERT INTO tasks ("Id", "WorkspaceId", "AgentId", "AgentVersion", "Kind", "Status", "Priority", "RunAt", "Attempts", "MaxAttempts",
            "TimeoutSeconds", "Input", "IdempotencyKey", "RequestHash", "CancelRequested", "LastEventSeq", "ScheduleId", "CreatedAt", "CreatedBy")
        SELECT id, workspace, agent, version, kind, @status, priority, run_at, 0, max_attempts, timeout, input, key, hash, false, 1, schedule, created_at, created_by
        FROM unnest(@ids, @workspaces, @agents, @versions, @kinds, @priorities, @runAts, @maxAttempts, @timeouts, @inputs, @keys, @hashes,
            @schedules, @createdAts, @createdBys)
            AS t(id, workspace, agent, version, kind, priority, run_at, max_attempts, timeout, input, key, hash, schedule, created_at, created_by)
        """;

    private const string PostgresOutbox = $"""
        WITH created AS ({PostgresInsert} RETURNING "Id", "Priority", "RunAt")
        INSERT INTO task_outbox ("TaskId", "Priority", "DueAt") SELECT "Id", "Priority", "RunAt" FROM created
        """;

    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>();
    private readonly IServiceProvider _services;
    private readonly NpgsqlDataSource? _postgres;
    private readonly bool _outbox;
    private readonly Task[] _writers;

    public TaskWriter(IServiceProvider services, IOptions<StorageOptions> storage, IOptions<TaskOptions> queue)
    {
        _services = services;
        _outbox = queue.Value.Provider == TaskOptions.RabbitMq;
        _postgres = storage.Value.Provider == StorageOptions.Postgres ? (NpgsqlDataSource)services.GetRequiredService<DbDataSource>() : null;
        // SQLite takes one writer at a time anyway; PostgreSQL commits two groups in parallel, one per core here.
        var writers = _postgres is null ? 1 : 2;
        _writers = Enumerable.Range(0, writers).Select(_ => Task.Run(WriteLoopAsync)).ToArray();
    }

    /// <summary>Writes the tasks (and their outbox rows) atomically; completes once they are committed.</summary>
    public Task WriteAsync(IReadOnlyList<AgentTask> tasks)
    {
        var pending = new Pending(tasks);
        return _pending.Writer.TryWrite(pending)
            ? pending.Done.Task
            : Task.FromException(new OperationCanceledException("The service is stopping; the tasks were not submitted."));
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await Task.WhenAll(_writers);
    }

    private async Task WriteLoopAsync()
    {
        var group = new List<Pending>();
        while (await _pending.Reader.WaitToReadAsync())
        {
            group.Clear();
            var rows = 0;
            while (rows < GroupRows && _pending.Reader.TryRead(out var next))
            {
                group.Add(next);
                rows += next.Tasks.Count;
            }
            if (group.Count > 0)
            {
                await WriteGroupAsync(group);
            }
        }
    }

    private async Task WriteGroupAsync(List<Pending> group)
    {
        try
        {
            await SaveAsync(group);
            group.ForEach(p => p.Done.TrySetResult());
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation() && group.Count > 1)
        {
            // Rolled back for sure: one submission's conflict must not fail the others.
            foreach (var pending in group)
            {
                await WriteGroupAsync([pending]);
            }
        }
        catch (Exception ex)
        {
            group.ForEach(p => p.Done.TrySetException(ex));
        }
    }

    private async Task SaveAsync(List<Pending> group)
    {
        if (_postgres is not null)
        {
            await InsertOnPostgresAsync(group);
            return;
        }
        await using var scope = _services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        AddTo(db, group.SelectMany(p => p.Tasks));
        // Not the submitter's token: once grouped, a submission is written whether or not its client waits.
        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>
    /// The same rows EF Core would write, in one round trip. A unique violation surfaces as EF Core reports it
    /// (<see cref="DbUpdateException"/>), so callers handle both paths alike.
    /// </summary>
    private async Task InsertOnPostgresAsync(List<Pending> group)
    {
        var tasks = group.SelectMany(p => p.Tasks).ToList();
        await using var command = _postgres!.CreateCommand(_outbox ? PostgresOutbox : PostgresInsert);
        var parameters = command.Parameters;
        parameters.AddWithValue("status", AgentTaskStatus.Queued);
        parameters.AddWithValue("ids", tasks.Select(t => t.Id).ToArray());
        parameters.AddWithValue("workspaces", tasks.Select(t => t.WorkspaceId).ToArray());
        parameters.AddWithValue("agents", tasks.Select(t => t.AgentId).ToArray());
        parameters.AddWithValue("versions", tasks.Select(t => t.AgentVersion).ToArray());
        parameters.AddWithValue("kinds", tasks.Select(t => t.Kind).ToArray());
        parameters.AddWithValue("priorities", tasks.Select(t => t.Priority).ToArray());
        parameters.AddWithValue("runAts", tasks.Select(t => t.RunAt).ToArray());
        parameters.AddWithValue("maxAttempts", tasks.Select(t => t.MaxAttempts).ToArray());
        parameters.AddWithValue("timeouts", tasks.Select(t => t.TimeoutSeconds).ToArray());
        parameters.AddWithValue("inputs", tasks.Select(t => t.Input).ToArray());
        parameters.Add(new NpgsqlParameter<string?[]>("keys", tasks.Select(t => t.IdempotencyKey).ToArray()));
        parameters.Add(new NpgsqlParameter<string?[]>("hashes", tasks.Select(t => t.RequestHash).ToArray()));
        parameters.Add(new NpgsqlParameter<Guid?[]>("schedules", tasks.Select(t => t.ScheduleId).ToArray()));
        parameters.AddWithValue("createdAts", tasks.Select(t => t.CreatedAt).ToArray());
        parameters.Add(new NpgsqlParameter<Guid?[]>("createdBys", tasks.Select(t => t.CreatedBy).ToArray()));
        try
        {
            await command.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new DbUpdateException("A task's idempotency key was taken by a concurrent submission.", ex);
        }
    }

    /// <summary>Adds new tasks to a context, and with RabbitMQ each one's row on the outbox, for the relay to publish.</summary>
    public void AddTo(AppDbContext db, IEnumerable<AgentTask> tasks)
    {
        var added = tasks.ToList();
        db.Tasks.AddRange(added);
        if (_outbox)
        {
            db.TaskOutbox.AddRange(added.Select(t => new TaskOutboxEntry { TaskId = t.Id, Priority = t.Priority, DueAt = t.RunAt }));
        }
    }

    private sealed record Pending(IReadOnlyList<AgentTask> Tasks)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
