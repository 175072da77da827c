using System.Runtime.CompilerServices;

namespace Agentry.Chat;

/// <summary>
/// The events of one exchange as this node produces them, for the client that asked on this node: each delta is handed
/// over as the model yields it, before its batch reaches the database. Readers on other nodes, and any reader that
/// comes back later, read the database log instead; both carry the same numbers.
/// </summary>
internal sealed class ReplyFeed
{
    private readonly Lock _lock = new();
    private readonly List<ConversationEventResponse> _events = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _completed;

    public void Add(ConversationEventResponse item)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            _events.Add(item);
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    /// <summary>No more events will come; readers end once they have read the rest.</summary>
    public void Complete()
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            _completed = true;
            changed = _changed;
        }
        changed.TrySetResult();
    }

    /// <summary>Every event from the first, as it arrives, until the feed completes.</summary>
    public async IAsyncEnumerable<ConversationEventResponse> ReadAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var next = 0;
        while (true)
        {
            ConversationEventResponse[] batch;
            bool completed;
            Task changed;
            lock (_lock)
            {
                batch = _events.Count > next ? _events.GetRange(next, _events.Count - next).ToArray() : [];
                completed = _completed;
                changed = _changed.Task;
            }
            foreach (var item in batch)
            {
                yield return item;
            }
            next += batch.Length;
            if (batch.Length == 0)
            {
                if (completed)
                {
                    yield break;
                }
                await changed.WaitAsync(ct);
            }
        }
    }
}
