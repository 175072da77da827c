using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Agentry.Tasks;

/// <summary>
/// Dispatch through a RabbitMQ quorum queue. A delivery only names a task; the worker leases it from the
/// database with a conditional update, so a duplicate, late or stale message runs nothing (it is acked and
/// dropped). A delivery stays unacked while its task runs and is acked once the outcome is committed: a worker
/// that dies first leaves it to the broker to redeliver (and the lease sweeper to requeue).
/// Deliveries wait in a small local buffer (at most the prefetch, which is the worker's concurrency) from which
/// the highest priority is handed out first.
/// </summary>
internal sealed class RabbitMqTaskQueue(
    RabbitMqConnection connection, TaskStore store, IOptions<TaskOptions> options, ILogger<RabbitMqTaskQueue> logger)
    : ITaskQueue, IAsyncDisposable
{
    private readonly TaskOptions _options = options.Value;
    private readonly Lock _lock = new();
    // Highest priority first, then in the order they arrived (the relay publishes oldest due first).
    private readonly PriorityQueue<Delivery, (int Priority, long Sequence)> _buffer = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly SemaphoreSlim _acks = new(1, 1);
    private readonly ConcurrentDictionary<Guid, Delivery> _held = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _sequence;
    private Task? _consuming;

    public async Task<IReadOnlyList<LeasedTask>> TakeAsync(int max, CancellationToken cancellationToken)
    {
        StartConsuming();
        while (true)
        {
            var taken = new List<LeasedTask>();
            while (taken.Count < max && Next() is { } delivery)
            {
                LeasedTask? task;
                try
                {
                    task = await store.LeaseByIdAsync(delivery.TaskId, cancellationToken);
                }
                catch (Exception) when (taken.Count > 0)
                {
                    Return(delivery);
                    return taken;
                }
                catch (Exception)
                {
                    Return(delivery);
                    throw;
                }
                if (task is null)
                {
                    // Already running, finished, cancelled or not yet due: whatever made it due again wrote a new outbox row.
                    await AckAsync(delivery);
                    continue;
                }
                _held[task.LeaseId] = delivery;
                taken.Add(task);
            }
            if (taken.Count > 0)
            {
                return taken;
            }
            await _arrived.WaitAsync(_options.PollInterval, cancellationToken);
        }
    }

    public async ValueTask SettleAsync(LeasedTask task)
    {
        if (_held.TryRemove(task.LeaseId, out var delivery))
        {
            await AckAsync(delivery);
        }
    }

    private void StartConsuming()
    {
        // Only a node that takes work consumes: an API-only node must not hold deliveries it never runs.
        if (_consuming is null)
        {
            lock (_lock)
            {
                _consuming ??= Task.Run(() => ConsumeAsync(_stopping.Token));
            }
        }
    }

    /// <summary>Consumes on a fresh channel for as long as it stays open, and again after it closes.</summary>
    private async Task ConsumeAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            IChannel? channel = null;
            try
            {
                var open = await connection.GetAsync(ct);
                channel = await open.CreateChannelAsync(cancellationToken: ct);
                await connection.DeclareTopologyAsync(channel, ct);
                await channel.BasicQosAsync(0, (ushort)Math.Min(_options.Concurrency, ushort.MaxValue), global: false, ct);
                var consumer = new AsyncEventingBasicConsumer(channel);
                var consuming = channel;
                consumer.ReceivedAsync += (_, e) => ReceivedAsync(consuming, e);
                await channel.BasicConsumeAsync(_options.RabbitMqQueue, autoAck: false, consumer, ct);
                TaskLog.Consuming(logger, _options.RabbitMqQueue);
                while (channel.IsOpen)
                {
                    await Task.Delay(250, ct);
                }
                TaskLog.ConsumerLost(logger, channel.CloseReason?.ReplyText ?? "closed");
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                TaskLog.ConsumeFailed(logger, ex);
            }
            finally
            {
                if (channel is not null)
                {
                    await RabbitMqConnection.DisposeQuietlyAsync(channel);
                }
            }
            try
            {
                await Task.Delay(RabbitMqConnection.ReconnectDelay, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task ReceivedAsync(IChannel channel, BasicDeliverEventArgs e)
    {
        if (!Guid.TryParse(Encoding.UTF8.GetString(e.Body.Span), out var taskId))
        {
            TaskLog.MalformedMessage(logger, e.BasicProperties.MessageId);
            await AckAsync(new Delivery(Guid.Empty, 0, e.DeliveryTag, channel));
            return;
        }
        var priority = e.BasicProperties.Headers?.TryGetValue(RabbitMqOutboxRelay.PriorityHeader, out var header) == true && header is int p ? p : 0;
        lock (_lock)
        {
            _buffer.Enqueue(new Delivery(taskId, priority, e.DeliveryTag, channel), (-priority, _sequence++));
        }
        _arrived.Release();
    }

    /// <summary>The best buffered delivery whose channel is still open (a closed channel's messages are back on the queue).</summary>
    private Delivery? Next()
    {
        lock (_lock)
        {
            while (_buffer.TryDequeue(out var delivery, out _))
            {
                if (delivery.Channel.IsOpen)
                {
                    return delivery;
                }
            }
            return null;
        }
    }

    private void Return(Delivery delivery)
    {
        lock (_lock)
        {
            _buffer.Enqueue(delivery, (-delivery.Priority, _sequence++));
        }
    }

    private async Task AckAsync(Delivery delivery)
    {
        if (!delivery.Channel.IsOpen)
        {
            // The broker requeued it when the channel closed; the redelivery finds the task settled and is dropped.
            return;
        }
        await _acks.WaitAsync();
        try
        {
            await delivery.Channel.BasicAckAsync(delivery.Tag, multiple: false);
        }
        catch (Exception ex)
        {
            TaskLog.AckFailed(logger, delivery.TaskId, ex);
        }
        finally
        {
            _acks.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_consuming is not null)
        {
            await _consuming;
        }
        _stopping.Dispose();
    }

    private sealed record Delivery(Guid TaskId, int Priority, ulong Tag, IChannel Channel);
}
