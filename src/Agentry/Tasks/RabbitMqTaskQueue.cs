using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

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
    // By task and lease: the tasks of one take share a lease id.
    private readonly ConcurrentDictionary<(Guid TaskId, Guid LeaseId), Delivery> _held = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _sequence;
    private Task? _consuming;

    /// <summary>
    /// Twice the worker's concurrency. A quorum queue grants new credit only once an ack is committed to its log (a
    /// disk write), so with a window of exactly the concurrency every slot would sit idle for that write after each
    /// task; the second half keeps the next deliveries at hand (and gives the priority buffer something to choose from).
    /// </summary>
    private ushort Prefetch => (ushort)Math.Min(_options.Concurrency * 2, ushort.MaxValue);

    public async Task<IReadOnlyList<LeasedTask>> TakeAsync(int max, CancellationToken cancellationToken)
    {
        StartConsuming();
        while (true)
        {
            var deliveries = Next(max);
            if (deliveries.Count > 0)
            {
                List<LeasedTask> leased;
                try
                {
                    leased = await store.LeaseByIdsAsync(deliveries.Select(d => d.TaskId).Distinct().ToList(), cancellationToken);
                }
                catch (Exception)
                {
                    Return(deliveries);
                    throw;
                }
                var byTask = leased.ToDictionary(t => t.Id);
                var taken = new List<LeasedTask>(leased.Count);
                foreach (var delivery in deliveries)
                {
                    if (byTask.Remove(delivery.TaskId, out var task))
                    {
                        _held[(task.Id, task.LeaseId)] = delivery;
                        taken.Add(task);
                    }
                    else
                    {
                        // Already running, finished, cancelled, not yet due, or a duplicate in this very take: whatever
                        // makes the task due again writes a new outbox row, so this message can go.
                        await AckAsync(delivery);
                    }
                }
                if (taken.Count > 0)
                {
                    return taken;
                }
                continue;
            }
            await _arrived.WaitAsync(_options.PollInterval, cancellationToken);
        }
    }

    public async ValueTask SettleAsync(LeasedTask task)
    {
        if (_held.TryRemove((task.Id, task.LeaseId), out var delivery))
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
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            IChannel? channel = null;
            try
            {
                var open = await connection.GetAsync(ct);
                channel = await open.CreateChannelAsync(cancellationToken: ct);
                await connection.DeclareTopologyAsync(channel, ct);
                await channel.BasicQosAsync(0, Prefetch, global: false, ct);
                var consumer = new AsyncEventingBasicConsumer(channel);
                var consuming = channel;
                consumer.ReceivedAsync += (_, e) => ReceivedAsync(consuming, e);
                await channel.BasicConsumeAsync(_options.RabbitMqQueue, autoAck: false, consumer, ct);
                TaskLog.Consuming(logger, _options.RabbitMqQueue);
                failures = 0;
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
            catch (Exception ex) when (failures++ % RabbitMqOutboxRelay.LogEveryFailures == 0)
            {
                TaskLog.ConsumeFailed(logger, failures, ex);
            }
            catch (Exception)
            {
                // Reported above, once a minute while the broker stays away.
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

    /// <summary>Up to <paramref name="max"/> of the best buffered deliveries whose channel is still open (a closed channel's messages are back on the queue).</summary>
    private List<Delivery> Next(int max)
    {
        var next = new List<Delivery>();
        lock (_lock)
        {
            while (next.Count < max && _buffer.TryDequeue(out var delivery, out _))
            {
                if (delivery.Channel.IsOpen)
                {
                    next.Add(delivery);
                }
            }
        }
        return next;
    }

    private void Return(IEnumerable<Delivery> deliveries)
    {
        lock (_lock)
        {
            foreach (var delivery in deliveries)
            {
                _buffer.Enqueue(delivery, (-delivery.Priority, _sequence++));
            }
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
        catch (AlreadyClosedException)
        {
            // Closed since the check: the same as above.
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
