using Agentry.Hosting;

namespace Agentry.Chat;

/// <summary>
/// Writes one reply's events: each goes to the live feed at once and into a batch that a loop appends to the log every
/// <see cref="ConversationOptions.FlushInterval"/>, or sooner when <see cref="ConversationOptions.FlushTokens"/> wait, so a
/// token is not a database round trip of its own. Each append also renews the reply's lease and reads a cancel asked
/// for on another node; one that finds the reply no longer its own stops the generation through <paramref name="lost"/>.
/// </summary>
internal sealed class ReplyWriter
{
    private const int FinishTries = 3;

    /// <summary>How often a reply with no deltas to write (its model is still reading the prompt) renews its lease and looks for a cancel.</summary>
    private static readonly TimeSpan CancelPoll = TimeSpan.FromMilliseconds(250);

    private readonly ReplyRun _run;
    private readonly ConversationStore _store;
    private readonly EventSignal _signal;
    private readonly ConversationOptions _options;
    private readonly CancellationTokenSource _lost;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private List<ConversationEvent> _pending = [];
    private long _nextSeq;
    private long _written;
    private bool _isLost;

    public ReplyWriter(ReplyRun run, ConversationStore store, EventSignal signal, ConversationOptions options, CancellationTokenSource lost, ILogger logger)
    {
        (_run, _store, _signal, _options, _lost, _logger) = (run, store, signal, options, lost, logger);
        _written = _nextSeq = run.Exchange.StartedSeq;
        _loop = Task.Run(LoopAsync);
    }

    private Guid ConversationId => _run.Exchange.Conversation.Id;

    public void Add<T>(string type, T data, DateTime at)
    {
        bool full;
        ConversationEvent item;
        lock (_lock)
        {
            item = ConversationContracts.Event(ConversationId, ++_nextSeq, type, at, data);
            _pending.Add(item);
            full = _pending.Count == _options.FlushTokens;
        }
        _run.Feed.Add(item.ToResponse());
        if (full)
        {
            _wake.Release();
        }
    }

    private async Task LoopAsync()
    {
        if (!await CommittedAsync())
        {
            return;
        }
        // The exchange's own events (the message and reply.started) are readable from here on.
        _signal.Notify(ConversationId);
        var lastCheck = DateTime.UtcNow;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_options.FlushInterval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            bool hasPending;
            lock (_lock)
            {
                hasPending = _pending.Count > 0;
            }
            if (hasPending || DateTime.UtcNow - lastCheck >= (_options.FlushInterval > CancelPoll ? _options.FlushInterval : CancelPoll))
            {
                await FlushAsync(CancellationToken.None);
                lastCheck = DateTime.UtcNow;
            }
        }
    }

    /// <summary>Appends what waits (or just renews the lease); false when that failed and the events still wait.</summary>
    private async Task<bool> FlushAsync(CancellationToken ct)
    {
        List<ConversationEvent> batch;
        lock (_lock)
        {
            (batch, _pending) = (_pending, []);
        }
        if (_isLost)
        {
            return false;
        }
        bool? cancel;
        try
        {
            cancel = await _store.AppendAsync(ConversationId, _run.Exchange.Reply.Id, _written, batch, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ChatLog.AppendFailed(_logger, ConversationId, ex);
            lock (_lock)
            {
                _pending.InsertRange(0, batch);
            }
            return false;
        }
        if (cancel is null)
        {
            _isLost = true;
            await _lost.CancelAsync();
            return false;
        }
        _written += batch.Count;
        if (batch.Count > 0)
        {
            _signal.Notify(ConversationId);
        }
        if (cancel == true)
        {
            try
            {
                await _run.Cancel.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // the reply ended meanwhile
            }
        }
        return true;
    }

    /// <summary>Writes what waits, then the reply as it ended with its final event; completes the feed.</summary>
    public async Task FinishAsync(ConversationMessage reply)
    {
        await StopLoopAsync();
        if (!await CommittedAsync())
        {
            // The exchange was never stored (its request failed to commit it): there is nothing to write a reply into.
            Done(reply);
            return;
        }
        var stored = false;
        for (var attempt = 1; attempt <= FinishTries && !_isLost && !stored; attempt++)
        {
            try
            {
                if (!await FlushAsync(CancellationToken.None))
                {
                    throw new InvalidOperationException("The reply's last deltas could not be written.");
                }
                var final = ConversationContracts.Event(ConversationId, _written + 1, ConversationEventTypes.ForStatus(reply.Status), reply.CompletedAt!.Value, reply.Finished());
                stored = await _store.FinishAsync(reply, _written, final, CancellationToken.None);
                _isLost = !stored;
                if (stored)
                {
                    _run.Feed.Add(final.ToResponse());
                }
            }
            catch (Exception ex) when (attempt < FinishTries)
            {
                ChatLog.FinishRetry(_logger, ConversationId, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt));
            }
            catch (Exception ex)
            {
                // The lease lapses and the sweeper stores the reply as failed, with the text already in the log.
                ChatLog.FinishFailed(_logger, ConversationId, reply.Id, ex);
            }
        }
        Done(reply);
    }

    /// <summary>The reply is no longer ours (the sweeper or a delete took it): end the feed without writing.</summary>
    public async Task AbandonAsync()
    {
        await StopLoopAsync();
        var reply = _run.Exchange.Reply;
        reply.Status = MessageStatuses.Failed;
        reply.Error = "The reply was taken over: its lease lapsed or the conversation was deleted.";
        Done(reply);
    }

    /// <summary>Waits for the exchange's commit; false when it failed.</summary>
    private async Task<bool> CommittedAsync()
    {
        await _run.Committed.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return _run.Committed.IsCompletedSuccessfully;
    }

    private async Task StopLoopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

    private void Done(ConversationMessage reply)
    {
        _run.Completion.TrySetResult(reply);
        _run.FirstOutput.TrySetResult();
        _run.Feed.Complete();
        _signal.Notify(ConversationId);
    }
}
