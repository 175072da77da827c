using System.Security.Cryptography;
using System.Text;
using Agentry.Data;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Agentry.Hosting;

public static class TelemetryExtensions
{
    /// <summary>OpenTelemetry traces and metrics, Prometheus at /metrics, JSON logs carrying the trace id.</summary>
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        // Read eagerly: the choice of exporters and log format shapes the service collection itself.
        var options = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new();
        // Npgsql's instrumentation loads the PostgreSQL client, which the SQLite default never needs.
        var postgres = builder.Configuration[$"{StorageOptions.SectionName}:Provider"] == StorageOptions.Postgres;
        builder.Services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<ApiMetrics>();
        builder.Services.AddSingleton<ReadinessMetrics>();

        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        if (options.JsonLogs)
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(options.ServiceName))
            .WithMetrics(metrics =>
            {
                // ASP.NET Core's own request histogram is left out: api_request_duration_seconds measures
                // the same thing, and recording both cost ~10 µs per request (a quarter of /health).
                metrics.AddMeter(ApiMetrics.MeterName)
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation();
                if (postgres)
                {
                    AddNpgsql(metrics);
                }
                if (options.PrometheusEnabled)
                {
                    metrics.AddPrometheusExporter();
                }
            });

        // Spans cost allocations on every request; make them only when someone collects them.
        if (options.OtlpEndpoint is { } endpoint)
        {
            telemetry.AddTracing(options.OtlpProtocol, endpoint, postgres);
        }
        return builder;
    }

    /// <summary>Spans exported over OTLP; a method of its own, so the exporter is loaded only when configured.</summary>
    private static void AddTracing(this OpenTelemetryBuilder telemetry, string protocol, Uri endpoint, bool postgres) =>
        telemetry.WithTracing(tracing =>
        {
            tracing.AddAspNetCoreInstrumentation(o => o.Filter = context => !IsProbe(context.Request.Path))
                .AddHttpClientInstrumentation()
                .AddEntityFrameworkCoreInstrumentation()
                .AddRedisInstrumentation();
            if (postgres)
            {
                AddNpgsql(tracing);
            }
        })
        .UseOtlpExporter(
            protocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc,
            endpoint);

    // Methods of their own: a lambda that merely mentions Npgsql loads it even when the branch is not taken.
    private static void AddNpgsql(MeterProviderBuilder metrics) => metrics.AddNpgsqlInstrumentation();

    private static void AddNpgsql(TracerProviderBuilder tracing) => tracing.AddNpgsql();

    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<TelemetryOptions>>().Value;
        if (options.PrometheusEnabled)
        {
            var scrape = endpoints.MapPrometheusScrapingEndpoint("/metrics").ExcludeFromDescription();
            if (options.MetricsToken is { } token)
            {
                scrape.Add(endpoint => endpoint.RequestDelegate = RequireToken(endpoint.RequestDelegate!, token));
            }
        }
        return endpoints;
    }

    private static RequestDelegate RequireToken(RequestDelegate next, string token)
    {
        var expected = Encoding.UTF8.GetBytes("Bearer " + token);
        return context =>
        {
            var given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
            if (CryptographicOperations.FixedTimeEquals(given, expected))
            {
                return next(context);
            }
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"metrics\"";
            return Task.CompletedTask;
        };
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");
}
