using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Agentry.Hosting;

/// <summary>
/// <c>readiness_status{check}</c>: what the last <c>/health/ready</c> probe found, per check and as <c>check="all"</c>
/// (1 healthy, 0.5 degraded, 0 unhealthy), so alerts see a node that is up but not ready, or one running without an
/// optional dependency. The balancer, Consul or the container runtime probe every few seconds; the checks are not run
/// again for the gauge (they reach databases and model servers). A verdict older than <see cref="StaleAfter"/> is left
/// out, so a node nobody probes shows no old one.
/// </summary>
public sealed class ReadinessMetrics
{
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(2);

    private readonly TimeProvider _clock;
    private Verdict? _last;

    public ReadinessMetrics(IMeterFactory meters, TimeProvider clock)
    {
        _clock = clock;
        meters.Create(ApiMetrics.MeterName).CreateObservableGauge("readiness_status", Observe,
            description: "The last readiness probe's verdict per check and for the node (check=\"all\"): 1 healthy, 0.5 degraded, 0 unhealthy");
    }

    internal void Record(HealthReport report) => Volatile.Write(ref _last, new Verdict(report, _clock.GetTimestamp()));

    private IEnumerable<Measurement<double>> Observe()
    {
        if (Volatile.Read(ref _last) is not { } last || _clock.GetElapsedTime(last.At) > StaleAfter)
        {
            return [];
        }
        return last.Report.Entries
            .Select(e => Measure(e.Value.Status, e.Key))
            .Prepend(Measure(last.Report.Status, "all"));
    }

    private static Measurement<double> Measure(HealthStatus status, string check) => new(
        status switch { HealthStatus.Healthy => 1, HealthStatus.Degraded => 0.5, _ => 0 },
        new KeyValuePair<string, object?>("check", check));

    private sealed record Verdict(HealthReport Report, long At);
}
