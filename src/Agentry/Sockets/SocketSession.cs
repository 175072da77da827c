using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;

namespace Agentry.Sockets;

/// <summary>
/// One WebSocket connection: a receive loop that answers each client message in order, one pump per subscription that
/// reads its stream from the event log, and one writer that sends what they queue. The queue is bounded: pumps wait
/// for room (the log, not memory, holds what a client has not read yet), and a client that lets it stay full for
/// <see cref="SocketOptions.SlowClientTimeout"/> is closed with 1013 so that it reconnects and resumes with <c>after</c>.
/// </summary>
internal sealed partial class SocketSession(
    WebSocket socket, Caller caller, CurrentWorkspace workspace, IServiceScopeFactory scopes, EventSignal signal, SocketOptions options,
    TimeProvider clock, ILogger logger)
{
    public const string TooSlowReason = "Too slow: the send queue stayed full. Reconnect and subscribe with after = the last seq received.";

    public const string RevokedReason = "The access token or API key was revoked.";

    public const string ExpiredReason = "The access token expired; reconnect with a fresh one and subscribe with after = the last seq received.";

    /// <summary>1013 Try Again Later: the client may reconnect at once and resume from its last sequence numbers.</summary>
    public const WebSocketCloseStatus TryAgainLater = (WebSocketCloseStatus)1013;

    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromDays(45);

    private readonly Channel<byte[]> _outgoing = Channel.CreateBounded<byte[]>(
        new BoundedChannelOptions(options.SendQueueSize) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<(WebSocketCloseStatus Status, string Reason)> _close = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Stream, Guid Id), Subscription> _subscriptions = [];
    private readonly List<Task> _pumps = [];
    private Func<Task<bool>> _credentialValid = static () => Task.FromResult(true);
    private readonly List<(Subscription Subscription, AsyncServiceScope Scope, IAsyncEnumerable<StreamEvent> Events)> _pending = [];

    /// <summary>
    /// Serves the connection until either side closes it, it drops, or the credential it was opened with expires at
    /// <paramref name="expires"/> or is revoked (<paramref name="credentialValid"/>, asked before each message and every
    /// keep-alive interval): then 1008, and the client reconnects with a fresh credential. Never throws.
    /// </summary>
    public async Task RunAsync(DateTimeOffset? expires, Func<Task<bool>> credentialValid, CancellationToken aborted)
    {
        _credentialValid = credentialValid;
        using var expiry = expires is { } at ? new CancellationTokenSource(Clamp(at - clock.GetUtcNow()), clock) : null;
        using var expired = expiry?.Token.Register(() => RequestClose(WebSocketCloseStatus.PolicyViolation, ExpiredReason));
        var writer = WriteAsync(aborted);
        var reader = ReceiveAsync(aborted);
        var watch = WatchCredentialAsync();
        await Task.WhenAny(reader, _close.Task);
        // Pumps stop, and the writer stops after the frame it is sending: what is still queued is not sent.
        await _stop.CancelAsync();
        Task[] pumps;
        lock (_lock)
        {
            pumps = [.. _pumps];
        }
        if (!_close.Task.IsCompleted)
        {
            SocketLog.Dropped(logger);
            await Task.WhenAll([writer, .. pumps]);
            return;
        }
        var (status, reason) = await _close.Task;
        using var timeout = new CancellationTokenSource(options.CloseTimeout, clock);
        try
        {
            await writer.WaitAsync(timeout.Token);
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(status, reason, timeout.Token);
            }
            await reader.WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // The client neither reads what is in flight nor answers the close: drop the connection.
            socket.Abort();
        }
        await Task.WhenAll(pumps);
        await watch;
    }

    /// <summary>Closes the connection (1008) once its credential no longer holds; false then.</summary>
    private async Task<bool> CheckCredentialAsync()
    {
        try
        {
            if (await _credentialValid())
            {
                return true;
            }
        }
        catch (Exception e) when (e.IsDatabaseOutage())
        {
            // The checks read through the cache; a database outage is not a revocation.
            return true;
        }
        RequestClose(WebSocketCloseStatus.PolicyViolation, RevokedReason);
        return false;
    }

    /// <summary>Subscriptions stream without client messages, so the credential is also checked on the keep-alive interval.</summary>
    private async Task WatchCredentialAsync()
    {
        using var timer = new PeriodicTimer(options.KeepAliveInterval, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token) && await CheckCredentialAsync())
            {
            }
        }
        catch (OperationCanceledException)
        {
            // The connection is closing.
        }
    }

    /// <summary>A timer's delay: not negative, and within what a timer takes (about 49 days; a token may claim years).</summary>
    private static TimeSpan Clamp(TimeSpan delay) =>
        delay < TimeSpan.Zero ? TimeSpan.Zero : delay > MaxTimerDelay ? MaxTimerDelay : delay;

    /// <summary>Ends the connection with a close frame (the first reason given wins).</summary>
    private void RequestClose(WebSocketCloseStatus status, string reason) => _close.TrySetResult((status, reason));

    /// <summary>
    /// Queues a frame; waits for room at most <see cref="SocketOptions.SlowClientTimeout"/>, then closes the connection as too
    /// slow. False when the frame was not queued (too slow, or the connection is closing).
    /// </summary>
    private async ValueTask<bool> EnqueueAsync(byte[] frame, CancellationToken ct)
    {
        if (_outgoing.Writer.TryWrite(frame))
        {
            return true;
        }
        using var timer = new CancellationTokenSource(options.SlowClientTimeout, clock);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token, _stop.Token);
        try
        {
            await _outgoing.Writer.WriteAsync(frame, wait.Token);
            return true;
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !ct.IsCancellationRequested && !_stop.IsCancellationRequested)
        {
            SocketLog.TooSlow(logger, options.SlowClientTimeout);
            RequestClose(TryAgainLater, TooSlowReason);
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task WriteAsync(CancellationToken aborted)
    {
        try
        {
            // The frame being sent is not cancelled by _stop: a close frame can only follow a whole message.
            await foreach (var frame in _outgoing.Reader.ReadAllAsync(_stop.Token))
            {
                await socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, aborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            // Closing, or the connection dropped; the receive loop sees the latter too.
        }
    }

    private async Task ReceiveAsync(CancellationToken aborted)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4_096);
        var message = new ArrayBufferWriter<byte>(4_096);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), aborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    RequestClose(WebSocketCloseStatus.NormalClosure, "");
                    return;
                }
                if (message.WrittenCount + result.Count > options.MaxMessageBytes)
                {
                    SocketLog.MessageTooBig(logger, options.MaxMessageBytes);
                    RequestClose(WebSocketCloseStatus.MessageTooBig, $"A message may be at most {options.MaxMessageBytes} bytes.");
                    return;
                }
                message.Write(buffer.AsSpan(0, result.Count));
                if (!result.EndOfMessage)
                {
                    continue;
                }
                var answered = result.MessageType == WebSocketMessageType.Binary
                    ? await EnqueueAsync(SocketFrames.Error(null, SocketErrors.BinaryNotSupported, "Messages are JSON text; binary messages are not understood."), aborted)
                    : await HandleAsync(message.WrittenMemory, aborted);
                message.ResetWrittenCount();
                if (!answered)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            // The connection dropped (or was aborted while closing).
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A live subscription: its pump reads the stream with a database context of its own until cancelled or the stream ends.</summary>
    private sealed class Subscription(string stream, Guid id, long after, CancellationToken stop) : IDisposable
    {
        public string Stream { get; } = stream;
        public Guid Id { get; } = id;
        public long Last { get; set; } = after;
        public CancellationTokenSource Cancel { get; } = CancellationTokenSource.CreateLinkedTokenSource(stop);

        public void Dispose() => Cancel.Dispose();
    }

    private async Task PumpAsync(Subscription subscription, AsyncServiceScope scope, IAsyncEnumerable<StreamEvent> events)
    {
        var ct = subscription.Cancel.Token;
        try
        {
            await foreach (var e in events.WithCancellation(ct))
            {
                if (!await EnqueueAsync(SocketFrames.Event(subscription.Stream, subscription.Id, e.Seq, e.Type, e.At, e.Data), ct))
                {
                    return;
                }
                subscription.Last = e.Seq;
            }
            await EnqueueAsync(SocketFrames.End(subscription.Stream, subscription.Id, subscription.Last), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Unsubscribed, or the connection is closing.
        }
        catch (Exception e)
        {
            SocketLog.StreamFailed(logger, subscription.Stream, subscription.Id, subscription.Last, e);
            await EnqueueAsync(SocketFrames.Error(null, "stream_failed",
                $"Reading {subscription.Stream} {subscription.Id} failed after seq {subscription.Last}; subscribe again with after = {subscription.Last}."), ct);
        }
        finally
        {
            Remove(subscription);
            subscription.Dispose();
            await scope.DisposeAsync();
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock)
        {
            if (_subscriptions.TryGetValue((subscription.Stream, subscription.Id), out var current) && current == subscription)
            {
                _subscriptions.Remove((subscription.Stream, subscription.Id));
            }
        }
    }
}
