using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;

namespace Agentry.Hosting;

/// <summary>A source of the <c>active_connections</c> gauge for one service (http, database, redis, …).</summary>
public sealed record ConnectionGauge(string Service, Func<long> Read);

/// <summary>
/// The request, error and connection series named in the audit report, on the <c>Agentry</c> meter.
/// Prometheus names come out exactly as written here (the exporter keeps existing unit and _total suffixes).
/// </summary>
public sealed class ApiMetrics
{
    public const string MeterName = "Agentry";
    public const string ProblemCodeItem = "agentry.problem.code";

    private static readonly string[] StatusText = Enumerable.Range(0, 600).Select(s => s.ToString()).ToArray();

    private readonly Histogram<double> _duration;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _rateLimitRejections;
    private long _httpConnections;

    public ApiMetrics(IMeterFactory meters, IEnumerable<ConnectionGauge> gauges)
    {
        var meter = meters.Create(MeterName);
        _duration = meter.CreateHistogram("api_request_duration_seconds", "s", "API request duration",
            advice: new InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
            });
        _requests = meter.CreateCounter<long>("api_request_total", description: "Total API requests");
        _errors = meter.CreateCounter<long>("api_errors_total", description: "Total API errors (status 400 and above)");
        _rateLimitRejections = meter.CreateCounter<long>("rate_limit_rejections_total", description: "Requests refused with 429 by a rate limit policy");
        var sources = gauges.Prepend(new ConnectionGauge("http", () => Volatile.Read(ref _httpConnections))).ToArray();
        meter.CreateObservableGauge("active_connections",
            () => sources.Select(g => new Measurement<long>(g.Read(), new KeyValuePair<string, object?>("service", g.Service))),
            description: "Open connections per service");
    }

    /// <summary>Kestrel connection middleware that keeps the http connection count.</summary>
    public ConnectionDelegate CountConnections(ConnectionDelegate next) => async connection =>
    {
        Interlocked.Increment(ref _httpConnections);
        try { await next(connection); }
        finally { Interlocked.Decrement(ref _httpConnections); }
    };

    internal void RateLimitRejected(string policy) => _rateLimitRejections.Add(1, new KeyValuePair<string, object?>("policy", policy));

    internal async Task RecordAsync(HttpContext context, RequestDelegate next)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            var status = context.Response.StatusCode;
            var endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            var tags = new TagList
            {
                { "method", context.Request.Method },
                { "endpoint", endpoint },
                { "status", status is >= 0 and < 600 ? StatusText[status] : status.ToString() },
            };
            // A WebSocket (101) lasts as long as its connection: counted, but kept out of the latency histogram.
            if (status != StatusCodes.Status101SwitchingProtocols)
            {
                _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
            }
            _requests.Add(1, tags);
            if (status >= 400)
            {
                var errorType = context.Items[ProblemCodeItem] as string ?? ProblemCodes.ForStatus(status);
                _errors.Add(1, new TagList { { "method", context.Request.Method }, { "endpoint", endpoint }, { "error_type", errorType } });
            }
        }
    }
}

public static class ApiMetricsExtensions
{
    internal static IApplicationBuilder UseApiMetrics(this IApplicationBuilder app)
    {
        var metrics = app.ApplicationServices.GetRequiredService<ApiMetrics>();
        return app.Use(next => context => metrics.RecordAsync(context, next));
    }
}
