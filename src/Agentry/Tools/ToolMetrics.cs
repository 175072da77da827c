using System.Diagnostics;
using System.Diagnostics.Metrics;
using Agentry.Hosting;

namespace Agentry.Tools;

/// <summary><c>tool_calls_total</c> and <c>tool_call_duration_seconds</c> by server, tool and outcome, on the <c>Agentry</c> meter.</summary>
internal sealed class ToolMetrics
{
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;

    public ToolMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(ApiMetrics.MeterName);
        _calls = meter.CreateCounter<long>("tool_calls_total", description: "Tool calls through the catalog, by server, tool and outcome");
        _duration = meter.CreateHistogram("tool_call_duration_seconds", "s", "Tool call duration, validation included",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
    }

    public void Called(string server, string tool, string outcome, TimeSpan duration)
    {
        var tags = new TagList { { "server", server }, { "tool", tool }, { "outcome", outcome } };
        _calls.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
    }
}
