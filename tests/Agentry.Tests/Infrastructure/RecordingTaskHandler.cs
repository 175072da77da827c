using System.Collections.Concurrent;
using System.Text.Json;
using Agentry.Tasks;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// Runs "webhook" tasks in tests (it replaces any real handler of that kind) and records every run by task
/// id. The input steers it: <c>{"failTimes": n}</c> fails the first n attempts (retryably),
/// <c>{"hold": true}</c> waits until <see cref="ReleaseHeld"/>, <c>{"delayMs": n}</c> takes that long.
/// Its result is <c>{"ok": true}</c>.
/// </summary>
public sealed class RecordingTaskHandler : ITaskHandler
{
    private TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Kind => "webhook";

    /// <summary>How many times each task's handler was entered.</summary>
    public ConcurrentDictionary<Guid, int> Runs { get; } = new();

    public void Register(IServiceCollection services) => services.AddSingleton<ITaskHandler>(this);

    public void ReleaseHeld() => Interlocked.Exchange(ref _held, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public int RunsOf(Guid id) => Runs.GetValueOrDefault(id);

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        Runs.AddOrUpdate(run.TaskId, 1, (_, n) => n + 1);
        var input = run.Input;
        if (input.ValueKind == JsonValueKind.Object)
        {
            if (input.TryGetProperty("hold", out var hold) && hold.GetBoolean())
            {
                await Volatile.Read(ref _held).Task.WaitAsync(cancellationToken);
            }
            if (input.TryGetProperty("delayMs", out var delay))
            {
                await Task.Delay(delay.GetInt32(), cancellationToken);
            }
            if (input.TryGetProperty("failTimes", out var failTimes) && run.Attempt <= failTimes.GetInt32())
            {
                throw new TaskFailedException($"Attempt {run.Attempt} fails on purpose.", retryable: true);
            }
        }
        return JsonSerializer.SerializeToElement(new { ok = true });
    }
}
