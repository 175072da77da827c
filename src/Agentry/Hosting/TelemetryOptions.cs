using System.ComponentModel.DataAnnotations;

namespace Agentry.Hosting;

/// <summary>Where traces, metrics and logs go. Section <c>Agentry:Telemetry</c>.</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Agentry:Telemetry";

    /// <summary>OTLP collector (e.g. http://otel-collector:4317). Unset: no OTLP export, and no tracing overhead.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> (port 4317) or <c>http/protobuf</c> (port 4318).</summary>
    [AllowedValues("grpc", "http/protobuf", ErrorMessage = "Agentry:Telemetry:OtlpProtocol must be 'grpc' or 'http/protobuf'.")]
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>Service name reported in every trace and metric.</summary>
    [Required(ErrorMessage = "Agentry:Telemetry:ServiceName must not be empty.")]
    public string ServiceName { get; set; } = "agentry";

    /// <summary>Serve Prometheus text at <c>/metrics</c>.</summary>
    public bool PrometheusEnabled { get; set; } = true;

    /// <summary>
    /// When set, <c>/metrics</c> answers only <c>Authorization: Bearer &lt;this&gt;</c> (Prometheus'
    /// <c>authorization.credentials</c>); a static secret rather than a user token, so scraping never needs
    /// the database. Unset: open, for a scraper on a private network.
    /// </summary>
    [MinLength(16, ErrorMessage = "Agentry:Telemetry:MetricsToken must have at least 16 characters.")]
    public string? MetricsToken { get; set; }

    /// <summary>Log as one JSON object per line (with trace and span ids); false gives the plain console format.</summary>
    public bool JsonLogs { get; set; } = true;
}
