using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Agentry.Hosting;

public static class HealthExtensions
{
    /// <summary>Tag for checks that /health/ready runs; every dependency a feature adds carries it.</summary>
    public const string ReadyTag = "ready";

    /// <summary>How long one dependency may take to answer a readiness probe.</summary>
    public static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// <c>/health</c> is liveness: no I/O, always cheap. <c>/health/ready</c> asks every dependency:
    /// 200 when all are healthy or degraded (an optional one is down), 503 when a required one is down.
    /// </summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/health", Live).ExcludeFromDescription();
        endpoints.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = WriteReadiness,
        }).WithTags("Health").ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Answers without running any check: a live process that can serve HTTP is all liveness means.</summary>
    private static ContentHttpResult Live(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        return TypedResults.Text("Healthy");
    }

    private static Task WriteReadiness(HttpContext context, HealthReport report)
    {
        context.RequestServices.GetRequiredService<ReadinessMetrics>().Record(report);
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString().ToLowerInvariant(),
            durationMs = Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new
                {
                    status = e.Value.Status.ToString().ToLowerInvariant(),
                    durationMs = Math.Round(e.Value.Duration.TotalMilliseconds, 1),
                    description = e.Value.Description ?? e.Value.Exception?.Message,
                }),
        };
        return JsonSerializer.SerializeAsync(context.Response.Body, body, JsonSerializerOptions.Web, context.RequestAborted);
    }
}
