using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// The task dispatch seam: how a worker learns which tasks to run. The database stays the truth for
/// every provider; a provider only decides how work is found (polling the table, or a broker's
/// deliveries) and is told when an outcome is committed.
/// </summary>
internal interface ITaskQueue
{
    /// <summary>Waits until tasks are due, then leases up to <paramref name="max"/> of them to this worker.</summary>
    Task<IReadOnlyList<LeasedTask>> TakeAsync(int max, CancellationToken cancellationToken);

    /// <summary>Called once the task's outcome is committed, or when the worker gives it up.</summary>
    ValueTask SettleAsync(LeasedTask task);
}

/// <summary>
/// The embedded default: workers lease straight from the tasks table (SQLite's single writer makes the
/// claim atomic; PostgreSQL uses <c>FOR UPDATE SKIP LOCKED</c>), walking workspaces round-robin.
/// </summary>
internal sealed class DatabaseTaskQueue(TaskStore store, TaskSignal signal, IOptions<TaskOptions> options) : ITaskQueue
{
    private Guid _lastWorkspace = Guid.Empty;

    public async Task<IReadOnlyList<LeasedTask>> TakeAsync(int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            var tasks = await store.LeaseNextAsync(_lastWorkspace, max, cancellationToken);
            if (tasks.Count == 0 && _lastWorkspace != Guid.Empty)
            {
                // Past the last workspace with work: start the round again.
                tasks = await store.LeaseNextAsync(Guid.Empty, max, cancellationToken);
            }
            if (tasks.Count > 0)
            {
                _lastWorkspace = tasks[0].WorkspaceId;
                return tasks;
            }
            _lastWorkspace = Guid.Empty;
            await signal.WaitAsync(options.Value.PollInterval, cancellationToken);
        }
    }

    public ValueTask SettleAsync(LeasedTask task) => ValueTask.CompletedTask;
}

/// <summary>
/// Wakes this node's idle workers when a task is submitted here, so they need not wait for their next
/// poll; other nodes find it when they poll.
/// </summary>
public sealed class TaskSignal
{
    private TaskCompletionSource _pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Pulse() => Interlocked.Exchange(ref _pulse, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await Volatile.Read(ref _pulse).Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Time to poll.
        }
    }
}
