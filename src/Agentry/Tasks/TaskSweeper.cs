using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// On every node: returns tasks whose lease lapsed to the queue (a quarter-lease after it lapses at the
/// latest, so an orphan runs again well within 1.5 leases), and refreshes the queue-depth gauges.
/// </summary>
internal sealed class TaskSweeper(TaskStore store, TaskMetrics metrics, TaskSignal signal, IOptions<TaskOptions> options, ILogger<TaskSweeper> logger)
    : BackgroundService
{
    private static readonly TimeSpan DepthInterval = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromTicks(Math.Clamp(options.Value.Lease.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(15).Ticks));
        using var timer = new PeriodicTimer(interval);
        var lastDepth = DateTime.MinValue;
        try
        {
            do
            {
                try
                {
                    var swept = await store.SweepAsync(stoppingToken);
                    if (swept > 0)
                    {
                        TaskLog.Swept(logger, swept);
                        signal.Pulse();
                    }
                    if (DateTime.UtcNow - lastDepth > DepthInterval)
                    {
                        metrics.Depth(await store.DepthAsync(stoppingToken));
                        lastDepth = DateTime.UtcNow;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    TaskLog.SweepFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
