namespace Agentry.Hosting;

/// <summary>
/// Gives back the memory that start-up needed and the service does not: migrations, the bootstrap and the first
/// sweeps build object graphs that are garbage a moment later, and the GC would otherwise keep the segments they
/// used. One aggressive, compacting collection shortly after start returns them to the operating system.
/// </summary>
internal sealed class StartupSettling(IHostApplicationLifetime lifetime) : BackgroundService
{
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
        await Task.Delay(Delay, stoppingToken);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}
