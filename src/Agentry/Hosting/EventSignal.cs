using System.Collections.Concurrent;

namespace Agentry.Hosting;

/// <summary>
/// Tells this node's event streams that a stream (a task's, a conversation's: keyed by its UUIDv7 id) has new events,
/// so a live view answers at once. Streams also re-read the log on a short interval, which is how changes made on
/// other nodes reach them.
/// </summary>
public sealed class EventSignal
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _waiters = new();

    public void Notify(Guid streamId)
    {
        if (_waiters.TryRemove(streamId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Waits for <see cref="Notify"/> on the stream, at most <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(Guid streamId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var waiter = _waiters.GetOrAdd(streamId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await waiter.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            _waiters.TryRemove(new KeyValuePair<Guid, TaskCompletionSource>(streamId, waiter));
        }
    }
}
