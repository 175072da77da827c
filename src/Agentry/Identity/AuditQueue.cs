using System.Threading.Channels;

namespace Agentry.Identity;

/// <summary>
/// Writes queued audit events (<see cref="AuditTrail.QueueAsync"/>) in batches: every <see cref="FlushInterval"/>, or at
/// once when <see cref="BatchSize"/> wait, so a frequent event costs its caller a queue write, not a commit. A read of the
/// audit trail on this node first writes what is queued (<see cref="FlushAsync"/>), so it sees every event this node
/// recorded; a graceful stop writes the rest. A node killed outright loses at most one interval's queued events.
/// </summary>
internal sealed class AuditQueue : BackgroundService
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(50);
    public const int BatchSize = 256;
    private const int Capacity = 10_000;

    private readonly Channel<AuditEvent> _queue = Channel.CreateBounded<AuditEvent>(
        new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly IServiceScopeFactory _scopes;
    private readonly AuditMetrics _metrics;
    private readonly ILogger<AuditQueue> _logger;
    private readonly TimeProvider _clock;

    public AuditQueue(IServiceScopeFactory scopes, AuditMetrics metrics, TimeProvider clock, ILogger<AuditQueue> logger) =>
        (_scopes, _metrics, _clock, _logger) = (scopes, metrics, clock, logger);

    /// <summary>Queues an event; waits only when the queue is full. Once the node has stopped, writes it at once.</summary>
    public async ValueTask EnqueueAsync(AuditEvent entry)
    {
        try
        {
            await _queue.Writer.WriteAsync(entry);
        }
        catch (ChannelClosedException)
        {
            await AuditTrail.WriteAsync(_scopes, [entry], _metrics, _logger);
        }
    }

    /// <summary>Writes everything queued so far.</summary>
    public async Task FlushAsync()
    {
        await _writing.WaitAsync();
        try
        {
            while (_queue.Reader.Count > 0)
            {
                var batch = new List<AuditEvent>(Math.Min(_queue.Reader.Count, BatchSize));
                while (batch.Count < BatchSize && _queue.Reader.TryRead(out var entry))
                {
                    batch.Add(entry);
                }
                await AuditTrail.WriteAsync(_scopes, batch, _metrics, _logger);
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                // Let a batch gather unless one is already full.
                if (_queue.Reader.Count < BatchSize)
                {
                    await Task.Delay(FlushInterval, _clock, stoppingToken);
                }
                await FlushAsync();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: the rest is written below.
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        _queue.Writer.TryComplete();
        await FlushAsync();
    }
}
