using System.Diagnostics.Metrics;
using Agentry.Hosting;

namespace Agentry.Tasks;

/// <summary>
/// Queue depth per status, dead letters, attempts, and the two latencies users feel: due → started and
/// started → finished; and the schedule slots this node fired. On the <c>Agentry</c> meter, exported at /metrics.
/// </summary>
public sealed class TaskMetrics
{
    private readonly Counter<long> _submitted;
    private readonly Counter<long> _attempts;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _wait;
    private readonly Histogram<double> _run;
    private readonly Counter<long> _slots;
    private volatile IReadOnlyDictionary<string, long> _depth = new Dictionary<string, long>();

    public TaskMetrics(IMeterFactory meters, TimeProvider clock)
    {
        var meter = meters.Create(ApiMetrics.MeterName);
        var buckets = new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] };
        _submitted = meter.CreateCounter<long>("tasks_submitted_total", description: "Tasks accepted");
        _attempts = meter.CreateCounter<long>("task_attempts_total", description: "Attempts started, by agent kind");
        _finished = meter.CreateCounter<long>("task_attempts_finished_total", description: "Attempts finished, by outcome");
        _wait = meter.CreateHistogram("task_queue_wait_seconds", "s", "From due to started", advice: buckets);
        _run = meter.CreateHistogram("task_run_seconds", "s", "From started to finished", advice: buckets);
        _slots = meter.CreateCounter<long>("schedule_slots_fired_total", description: "Schedule slots this node claimed, by outcome (task created or refused)");
        meter.CreateObservableGauge("task_queue_depth",
            () => AgentTaskStatus.All.Where(s => s is AgentTaskStatus.Queued or AgentTaskStatus.Running or AgentTaskStatus.Waiting)
                .Select(s => new Measurement<long>(_depth.GetValueOrDefault(s), new KeyValuePair<string, object?>("status", s))),
            description: "Tasks queued, running and waiting for an approval");
        meter.CreateObservableGauge("task_dead_letters", () => _depth.GetValueOrDefault(AgentTaskStatus.Dead), description: "Dead tasks waiting to be requeued or discarded");
        Clock = clock;
    }

    private TimeProvider Clock { get; }

    internal void Submitted(int count) => _submitted.Add(count);

    internal void Started(LeasedTask task)
    {
        _attempts.Add(1, new KeyValuePair<string, object?>("kind", task.Kind));
        _wait.Record(Math.Max(0, (Clock.GetUtcNow().UtcDateTime - task.RunAt).TotalSeconds));
    }

    internal void Finished(LeasedTask task, string outcome, TimeSpan elapsed)
    {
        _finished.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        _run.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("kind", task.Kind));
    }

    /// <summary>A slot this node claimed; <paramref name="created"/> false when the task was refused (e.g. the agent is gone).</summary>
    internal void SlotFired(bool created) => _slots.Add(1, new KeyValuePair<string, object?>("outcome", created ? "created" : "refused"));

    internal void Depth(IReadOnlyDictionary<string, long> depth) => _depth = depth;
}
