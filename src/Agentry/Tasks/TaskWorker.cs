using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// Runs tasks on this node: takes leased tasks from the queue up to its concurrency, renews their leases
/// on a heartbeat (which also brings cancellations from other nodes), runs each through the handler for
/// its agent's kind with the task's timeout, and records the outcome. On shutdown it lets running tasks
/// finish for a grace period, then cancels and releases them for another worker.
/// </summary>
internal sealed partial class TaskWorker(
    ITaskQueue queue,
    TaskStore store,
    RunningTasks running,
    IEnumerable<ITaskHandler> handlers,
    AgentVersions agents,
    TaskMetrics metrics,
    EventSignal events,
    IOptions<TaskOptions> options,
    ILogger<TaskWorker> logger) : BackgroundService
{
    private readonly TaskOptions _options = options.Value;
    // The last registration of a kind wins, so a deployment (or a test) can replace a handler.
    private readonly Dictionary<string, ITaskHandler> _handlers = handlers.GroupBy(h => h.Kind).ToDictionary(g => g.Key, g => g.Last());

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var slots = new SemaphoreSlim(_options.Concurrency);
        var heartbeat = HeartbeatAsync(stoppingToken);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await slots.WaitAsync(stoppingToken);
                var free = 1;
                while (free < _options.Concurrency && slots.Wait(0))
                {
                    free++;
                }
                IReadOnlyList<LeasedTask> tasks;
                try
                {
                    tasks = await queue.TakeAsync(free, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    slots.Release(free);
                    TaskLog.TakeFailed(logger, ex);
                    await Task.Delay(_options.PollInterval, stoppingToken);
                    continue;
                }
                if (free > tasks.Count)
                {
                    slots.Release(free - tasks.Count);
                }
                foreach (var task in tasks)
                {
                    var run = running.Add(task);
                    _ = Task.Run(() => RunAsync(run, slots), CancellationToken.None);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await DrainAsync();
        await heartbeat;
    }

    private async Task DrainAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (!running.IsEmpty && deadline.Elapsed < _options.ShutdownGrace)
        {
            await Task.Delay(50);
        }
        foreach (var run in running.All)
        {
            run.Stop(RunStop.WorkerStopping);
        }
        while (!running.IsEmpty && deadline.Elapsed < _options.ShutdownGrace + TimeSpan.FromSeconds(5))
        {
            await Task.Delay(50);
        }
    }

    private async Task RunAsync(RunningTask run, SemaphoreSlim slots)
    {
        var task = run.Task;
        var started = Stopwatch.GetTimestamp();
        metrics.Started(task);
        try
        {
            events.Notify(task.Id);
            var outcome = await ExecuteAsync(run);
            await RecordAsync(run, outcome);
            metrics.Finished(task, outcome.Status, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex)
        {
            // The outcome could not be written; the lease lapses and the sweeper gives the task another attempt.
            TaskLog.RecordFailed(logger, task.Id, ex);
        }
        finally
        {
            running.Remove(task.Id);
            await queue.SettleAsync(task);
            events.Notify(task.Id);
            slots.Release();
        }
    }

    private async Task<Outcome> ExecuteAsync(RunningTask run)
    {
        var task = run.Task;
        if (!_handlers.TryGetValue(task.Kind, out var handler))
        {
            return Outcome.Fail($"No handler runs '{task.Kind}' agents on this installation.", retryable: false);
        }
        run.Token.CancelAfter(TimeSpan.FromSeconds(task.TimeoutSeconds));
        try
        {
            var (name, definition) = await AgentAsync(task, run.Token.Token);
            using var input = JsonDocument.Parse(task.Input);
            var result = await handler.RunAsync(
                new TaskRun(task.Id, task.WorkspaceId, task.AgentId, task.AgentVersion, name, definition, input.RootElement.Clone(),
                    task.Attempts, task.MaxAttempts, new Progress(store, task, events)),
                run.Token.Token);
            return run.Stopped is RunStop.None ? Outcome.Succeed(result?.GetRawText()) : Outcome.For(run.Stopped);
        }
        catch (Exception) when (run.Stopped is not RunStop.None || run.Token.IsCancellationRequested)
        {
            // Stopped on purpose: by a cancel, a lost lease, shutdown, or else the timeout.
            return run.Stopped is RunStop.None ? Outcome.Fail($"Timed out after {task.TimeoutSeconds} s.", retryable: true) : Outcome.For(run.Stopped);
        }
        catch (TaskFailedException ex)
        {
            return Outcome.Fail(ex.Message, ex.Retryable);
        }
        catch (TaskWaitingException ex)
        {
            return new Outcome(AgentTaskStatus.Waiting, Wait: ex.Request);
        }
        catch (Exception ex)
        {
            TaskLog.HandlerFailed(logger, task.Id, ex);
            return Outcome.Fail($"{ex.GetType().Name}: {ex.Message}", retryable: true);
        }
    }

    /// <summary>
    /// Writes the outcome, retrying while the database is unreachable: until the lease lapses the task is
    /// still ours, and after that the sweeper gives it to another worker anyway.
    /// </summary>
    private async Task RecordAsync(RunningTask run, Outcome outcome)
    {
        var task = run.Task;
        var deadline = Stopwatch.StartNew();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var recorded = outcome.Status switch
                {
                    AgentTaskStatus.Succeeded => await store.SucceedAsync(task, outcome.Result, CancellationToken.None),
                    AgentTaskStatus.Cancelled => await store.CancelledAsync(task, CancellationToken.None),
                    AgentTaskStatus.Queued => await store.ReleaseAsync(task, CancellationToken.None),
                    AgentTaskStatus.Waiting => await store.WaitAsync(task, outcome.Wait!, CancellationToken.None),
                    "lost" => false,
                    _ => await store.FailAsync(task, outcome.Error!, outcome.Retryable, CancellationToken.None),
                };
                if (!recorded && outcome.Status != "lost")
                {
                    TaskLog.LeaseLost(logger, task.Id);
                }
                return;
            }
            catch (Exception ex) when (deadline.Elapsed < _options.Lease && ex is DbException or DbUpdateException or TimeoutException or InvalidOperationException)
            {
                TaskLog.RecordRetry(logger, task.Id, attempt + 1, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2_000, 100 * Math.Pow(2, attempt))));
            }
        }
    }

    private async Task HeartbeatAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Heartbeat);
        // Beats on after stopping is requested, so tasks that are finishing keep their leases.
        while (await timer.WaitForNextTickAsync(CancellationToken.None))
        {
            if (stoppingToken.IsCancellationRequested && running.IsEmpty)
            {
                return;
            }
            var held = running.All.ToList();
            if (held.Count == 0)
            {
                continue;
            }
            try
            {
                var renewed = (await store.RenewAsync(held.Select(r => r.Task).ToList(), CancellationToken.None)).ToDictionary(r => r.Id, r => r.CancelRequested);
                foreach (var run in held)
                {
                    if (!renewed.TryGetValue(run.Task.Id, out var cancel))
                    {
                        // Swept while we were cut off (or finished just now): stop; our late write would change nothing.
                        run.Stop(RunStop.LeaseLost);
                    }
                    else if (cancel)
                    {
                        run.Stop(RunStop.Cancelled);
                    }
                }
            }
            catch (Exception ex)
            {
                TaskLog.HeartbeatFailed(logger, ex);
            }
        }
    }

    /// <summary>The agent's name and definition at the task's version.</summary>
    private async Task<(string Name, AgentDefinition Definition)> AgentAsync(LeasedTask task, CancellationToken ct) =>
        await agents.FindAsync(task.AgentId, task.AgentVersion, ct)
            ?? throw new TaskFailedException($"Agent {task.AgentId} has no version {task.AgentVersion}.", retryable: false);

    private sealed record Outcome(string Status, string? Result = null, string? Error = null, bool Retryable = false, ApprovalRequest? Wait = null)
    {
        public static Outcome Succeed(string? result) => new(AgentTaskStatus.Succeeded, Result: result);

        public static Outcome Fail(string error, bool retryable) => new("failed", Error: error, Retryable: retryable);

        public static Outcome For(RunStop stop) => stop switch
        {
            RunStop.Cancelled => new(AgentTaskStatus.Cancelled),
            RunStop.WorkerStopping => new(AgentTaskStatus.Queued),
            _ => new("lost"),
        };
    }

    private sealed class Progress(TaskStore store, LeasedTask task, EventSignal events) : ITaskProgress
    {
        public async ValueTask ReportAsync(object data, CancellationToken cancellationToken)
        {
            await store.ProgressAsync(task, JsonSerializer.Serialize(data, JsonSerializerOptions.Web), cancellationToken);
            events.Notify(task.Id);
        }
    }
}

/// <summary>Why a running task was told to stop.</summary>
internal enum RunStop { None, Cancelled, LeaseLost, WorkerStopping }

/// <summary>A task running on this node, with the token its handler watches.</summary>
internal sealed class RunningTask(LeasedTask task)
{
    private int _stopped;

    public LeasedTask Task { get; } = task;
    public CancellationTokenSource Token { get; } = new();
    public RunStop Stopped => (RunStop)Volatile.Read(ref _stopped);

    public void Stop(RunStop reason)
    {
        if (Interlocked.CompareExchange(ref _stopped, (int)reason, (int)RunStop.None) == (int)RunStop.None)
        {
            try
            {
                Token.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It finished meanwhile.
            }
        }
    }
}

/// <summary>The tasks running on this node, so a cancel that arrives here reaches its handler at once.</summary>
public sealed class RunningTasks
{
    private readonly ConcurrentDictionary<Guid, RunningTask> _tasks = new();

    internal bool IsEmpty => _tasks.IsEmpty;
    internal IEnumerable<RunningTask> All => _tasks.Values;
    public int Count => _tasks.Count;

    internal RunningTask Add(LeasedTask task) => _tasks[task.Id] = new RunningTask(task);

    internal void Remove(Guid id)
    {
        if (_tasks.TryRemove(id, out var run))
        {
            run.Token.Dispose();
        }
    }

    /// <summary>Stops the task's handler if it runs here; other nodes learn of the cancel with their next heartbeat.</summary>
    public void Cancel(Guid id)
    {
        if (_tasks.TryGetValue(id, out var run))
        {
            run.Stop(RunStop.Cancelled);
        }
    }
}
