using System.ComponentModel.DataAnnotations;
using Agentry.Hosting;
using Agentry.Knowledge;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using YamlDotNet.Serialization;

namespace Agentry.Mesh;

/// <summary>How Kong fronts the nodes. Section <c>Agentry:Kong</c>.</summary>
public sealed class KongOptions
{
    public const string SectionName = "Agentry:Kong";

    /// <summary>The API nodes Kong balances, <c>host:port</c> each; none set means <c>127.0.0.1:8080</c>.</summary>
    public string[] Nodes { get; set; } = [];

    /// <summary>The name of Kong's service, and the prefix of its upstream and route names.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9-]{0,62}$", ErrorMessage = "Agentry:Kong:ServiceName must be lowercase letters, digits and dashes.")]
    public string ServiceName { get; set; } = "agentry";

    /// <summary>Kong's outer limit per client address, requests a minute (Agentry's own per-key buckets come behind it).</summary>
    [Range(1, 10_000_000, ErrorMessage = "Agentry:Kong:RequestsPerMinute must be between 1 and 10000000.")]
    public int RequestsPerMinute { get; set; } = 6_000;

    /// <summary>How long Kong waits on a node's response; long, for streamed replies and event streams.</summary>
    [Range(1, 86_400, ErrorMessage = "Agentry:Kong:ReadTimeoutSeconds must be between 1 and 86400.")]
    public int ReadTimeoutSeconds { get; set; } = 3_600;

    /// <summary>Sent as <c>Kong-Admin-Token</c> by <c>gateway kong --sync</c>, for an Admin API behind RBAC; never printed.</summary>
    public string? AdminToken { get; set; }
}

/// <summary>
/// Kong's declarative configuration (decK, <c>_format_version</c> 3.0) generated from Agentry's own route table: one service
/// over an upstream of the API nodes with active and passive health checks on <c>/health/ready</c>; a route per route
/// group (<c>/api/v1/{resource}</c>, <c>/v1</c>, <c>/mcp</c>, <c>/connect</c>, <c>/health</c>…; not <c>/metrics</c>), unbuffered so streams
/// flow; and, on the service, the rate-limiting, request-size-limiting (larger for document uploads), cors (the configured
/// origins) and prometheus plugins. Every entity is tagged <c>managed-by-agentry</c>.
/// </summary>
internal sealed class KongConfiguration(
    IOptions<KongOptions> kong, IOptions<HostingOptions> hosting, IOptions<KnowledgeOptions> knowledge)
{
    private const int Megabyte = 1_048_576;

    /// <summary>Routes for the operators' network only (Prometheus scrapes each node itself), never published.</summary>
    private static readonly string[] Internal = ["/metrics"];

    /// <summary>Paths served by middleware rather than endpoints: the web console's static files.</summary>
    private static readonly string[] Static = [Agentry.WebConsole.ConsoleExtensions.Path];

    /// <summary>The route groups: <c>/api/v1/{resource}</c> for the REST API, else the first path segment, and the console; sorted.</summary>
    public static IReadOnlyList<string> RouteGroups(IEnumerable<EndpointDataSource> sources) =>
        [.. sources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Select(e => GroupOf(e.RoutePattern.RawText ?? "")).Concat(Static)
            .Where(g => g.Length > 1 && !Internal.Contains(g))
            .Distinct().Order(StringComparer.Ordinal)];

    public static string GroupOf(string pattern)
    {
        var segments = pattern.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries).TakeWhile(s => !s.StartsWith('{')).ToList();
        var take = segments is ["api", "v1", ..] ? 3 : 1;
        return "/" + string.Join('/', segments.Take(take));
    }

    /// <summary>The tag on every entity Agentry writes: a sync removes only tagged entities it no longer wants.</summary>
    public const string ManagedTag = "managed-by-agentry";

    private static readonly string[] Tags = [ManagedTag];

    /// <summary>The configuration for the routes of <paramref name="sources"/> (the application's own route table), as YAML.</summary>
    public string ToYaml(IEnumerable<EndpointDataSource> sources) => ToYaml(Build(sources));

    /// <summary>A document from <see cref="Build"/> as decK YAML.</summary>
    public static string ToYaml(Dictionary<string, object> document) =>
        // Strings that YAML would read as something else ("3.0", "on") are quoted.
        new SerializerBuilder().WithQuotingNecessaryStrings().Build().Serialize(document);

    /// <summary>The configuration as decK's document model: maps, lists and scalars.</summary>
    public Dictionary<string, object> Build(IEnumerable<EndpointDataSource> sources)
    {
        var o = kong.Value;
        var upstream = $"{o.ServiceName}-nodes";
        var uploads = (int)Math.Ceiling((double)Math.Max(knowledge.Value.MaxDocumentBytes, hosting.Value.MaxRequestBodyBytes) / Megabyte) + 1;
        var config = new Dictionary<string, object>
        {
            ["_format_version"] = "3.0",
            ["services"] = new[]
            {
                new Dictionary<string, object>
                {
                    ["name"] = o.ServiceName, ["host"] = upstream, ["port"] = 80, ["protocol"] = "http",
                    ["connect_timeout"] = 5_000, ["write_timeout"] = 60_000, ["read_timeout"] = o.ReadTimeoutSeconds * 1_000, ["retries"] = 2, ["tags"] = Tags,
                    ["routes"] = RouteGroups(sources).Select(group => Route(o.ServiceName, group, group == "/api/v1/collections" ? uploads : null)).ToList(),
                    // On the service, not global: a Kong that fronts other services too keeps its own limits for them.
                    ["plugins"] = Plugins(o, (int)Math.Ceiling((double)hosting.Value.MaxRequestBodyBytes / Megabyte)),
                },
            },
            ["upstreams"] = new[]
            {
                new Dictionary<string, object>
                {
                    ["name"] = upstream, ["algorithm"] = "round-robin", ["tags"] = Tags,
                    ["healthchecks"] = new Dictionary<string, object>
                    {
                        ["active"] = new Dictionary<string, object>
                        {
                            ["type"] = "http", ["http_path"] = "/health/ready", ["timeout"] = 2, ["concurrency"] = 4,
                            ["healthy"] = new Dictionary<string, object> { ["interval"] = 5, ["successes"] = 2, ["http_statuses"] = new[] { 200 } },
                            ["unhealthy"] = new Dictionary<string, object>
                            {
                                ["interval"] = 5, ["http_failures"] = 2, ["tcp_failures"] = 2, ["timeouts"] = 2, ["http_statuses"] = new[] { 500, 503 },
                            },
                        },
                        ["passive"] = new Dictionary<string, object>
                        {
                            ["type"] = "http",
                            ["unhealthy"] = new Dictionary<string, object> { ["http_failures"] = 3, ["tcp_failures"] = 3, ["timeouts"] = 3, ["http_statuses"] = new[] { 502, 503 } },
                        },
                    },
                    ["targets"] = (o.Nodes.Length == 0 ? ["127.0.0.1:8080"] : o.Nodes).Select(node => new Dictionary<string, object> { ["target"] = node, ["weight"] = 100, ["tags"] = Tags }).ToList(),
                },
            },
        };
        return config;
    }

    private static Dictionary<string, object> Route(string service, string group, int? payloadMegabytes)
    {
        var route = new Dictionary<string, object>
        {
            ["name"] = $"{service}{(group.Length > 1 ? "-" + group.Trim('/').Replace('/', '-').Replace('.', '-') : "")}",
            ["paths"] = new[] { group },
            ["strip_path"] = false, ["preserve_host"] = true, ["protocols"] = new[] { "http", "https" },
            // Replies and event streams are written as they happen.
            ["request_buffering"] = false, ["response_buffering"] = false, ["tags"] = Tags,
        };
        if (payloadMegabytes is { } size)
        {
            route["plugins"] = new[] { SizeLimit(size) };
        }
        return route;
    }

    private List<Dictionary<string, object>> Plugins(KongOptions o, int payloadMegabytes)
    {
        var plugins = new List<Dictionary<string, object>>
        {
            new()
            {
                ["name"] = "rate-limiting",
                ["config"] = new Dictionary<string, object> { ["minute"] = o.RequestsPerMinute, ["limit_by"] = "ip", ["policy"] = "local" },
                ["tags"] = Tags,
            },
            SizeLimit(payloadMegabytes),
            new()
            {
                ["name"] = "prometheus", ["config"] = new Dictionary<string, object> { ["status_code_metrics"] = true, ["latency_metrics"] = true }, ["tags"] = Tags,
            },
        };
        if (hosting.Value.CorsOrigins is { Length: > 0 } origins)
        {
            plugins.Add(new()
            {
                ["name"] = "cors",
                ["config"] = new Dictionary<string, object>
                {
                    ["origins"] = origins, ["methods"] = new[] { "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" },
                    ["headers"] = new[] { "Authorization", "Content-Type", "Idempotency-Key", "Agentry-Workspace", "Last-Event-ID" },
                    ["exposed_headers"] = new[] { "Location", "Retry-After" }, ["credentials"] = false, ["max_age"] = 600,
                },
                ["tags"] = Tags,
            });
        }
        return plugins;
    }

    private static Dictionary<string, object> SizeLimit(int megabytes) => new()
    {
        ["name"] = "request-size-limiting",
        ["config"] = new Dictionary<string, object> { ["allowed_payload_size"] = megabytes, ["size_unit"] = "megabytes" },
        ["tags"] = Tags,
    };
}
