using System.Collections.Concurrent;

namespace Agentry.Tasks;

/// <summary>
/// Tells this node's event streams that a task has new events, so a live view answers at once. Streams
/// also re-read the log on a short interval, which is how changes made on other nodes reach them.
/// </summary>
public sealed class TaskEventSignal
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _waiters = new();

    public void Notify(Guid taskId)
    {
        if (_waiters.TryRemove(taskId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Waits for <see cref="Notify"/> on the task, at most <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(Guid taskId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var waiter = _waiters.GetOrAdd(taskId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await waiter.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            _waiters.TryRemove(new KeyValuePair<Guid, TaskCompletionSource>(taskId, waiter));
        }
    }
}
