using System.Threading.Channels;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

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

    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>();
    private readonly IServiceScopeFactory _scopes;
    private readonly Task[] _writers;

    public TaskWriter(IServiceScopeFactory scopes, IOptions<StorageOptions> storage)
    {
        _scopes = scopes;
        // SQLite takes one writer at a time anyway; PostgreSQL commits two groups in parallel, one per core here.
        var writers = storage.Value.Provider == StorageOptions.Postgres ? 2 : 1;
        _writers = Enumerable.Range(0, writers).Select(_ => Task.Run(WriteLoopAsync)).ToArray();
    }

    /// <summary>Writes the tasks (and their outbox rows) atomically; completes once they are committed.</summary>
    public Task WriteAsync(IReadOnlyList<AgentTask> tasks, bool outbox)
    {
        var pending = new Pending(tasks, outbox);
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
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        foreach (var pending in group)
        {
            db.Tasks.AddRange(pending.Tasks);
            if (pending.Outbox)
            {
                db.TaskOutbox.AddRange(OutboxRows(pending.Tasks));
            }
        }
        // Not the submitter's token: once grouped, a submission is written whether or not its client waits.
        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>With RabbitMQ, each new task's row on the outbox, for the relay to publish.</summary>
    public static IEnumerable<TaskOutboxEntry> OutboxRows(IEnumerable<AgentTask> tasks) =>
        tasks.Select(t => new TaskOutboxEntry { TaskId = t.Id, Priority = t.Priority, DueAt = t.RunAt });

    private sealed record Pending(IReadOnlyList<AgentTask> Tasks, bool Outbox)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
