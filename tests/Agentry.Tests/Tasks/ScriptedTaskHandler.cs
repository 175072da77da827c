using System.Collections.Concurrent;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Tasks;

namespace Agentry.Tests.Tasks;

/// <summary>
/// A handler for queue tests, registered in place of the real webhook handler: the task's input says
/// what it does (<c>{"mode": "ok" | "fail" | "fatal" | "sleep" | "block" | "progress", "ms": …, "count": …}</c>),
/// and every run is recorded, so tests can check what the queue did rather than what a server answered.
/// </summary>
public sealed class ScriptedTaskHandler : ITaskHandler
{
    public string Kind => AgentKinds.Webhook;

    /// <summary>Every run: task, attempt, when it started, and whether its token fired.</summary>
    public ConcurrentQueue<Run> Runs { get; } = new();

    /// <summary>Effects keyed by task id, as an idempotent handler would write them.</summary>
    public ConcurrentDictionary<Guid, int> Effects { get; } = new();

    public sealed record Run(Guid TaskId, int Attempt, DateTime StartedAt)
    {
        public bool Cancelled { get; set; }
    }

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var record = new Run(run.TaskId, run.Attempt, DateTime.UtcNow);
        Runs.Enqueue(record);
        var mode = run.Input.TryGetProperty("mode", out var m) ? m.GetString() : "ok";
        var ms = run.Input.TryGetProperty("ms", out var v) ? v.GetInt32() : 0;
        try
        {
            switch (mode)
            {
                case "fail":
                    throw new InvalidOperationException($"failing on purpose (attempt {run.Attempt})");
                case "fatal":
                    throw new TaskFailedException("refused on purpose", retryable: false);
                case "sleep":
                    await Task.Delay(ms, cancellationToken);
                    break;
                case "block":
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                    break;
                case "progress":
                    for (var i = 1; i <= run.Input.GetProperty("count").GetInt32(); i++)
                    {
                        await run.Progress.ReportAsync(new { step = i }, cancellationToken);
                        if (ms > 0)
                        {
                            await Task.Delay(ms, cancellationToken);
                        }
                    }
                    break;
            }
        }
        catch (OperationCanceledException)
        {
            record.Cancelled = true;
            throw;
        }
        Effects.AddOrUpdate(run.TaskId, 1, (_, n) => n + 1);
        return JsonSerializer.SerializeToElement(new { echo = run.Input, attempt = run.Attempt });
    }
}
