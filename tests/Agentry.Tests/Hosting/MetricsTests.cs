using System.Net;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;

namespace Agentry.Tests.Hosting;

/// <summary>
/// The Prometheus text at /metrics carries the series the audit report names. The program runs as its
/// own process: OpenTelemetry listens to meters by name process-wide, so apps hosted side by side in
/// the test process would add to each other's figures.
/// </summary>
public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_expose_request_error_database_cache_and_connection_series()
    {
        var port = RedisProcess.FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        await using var agentry = AgentryProcess.Start(TempFiles.Directory(), new Dictionary<string, string>(), "--urls", baseAddress.ToString());
        await agentry.WaitUntilHealthyAsync(baseAddress, TimeSpan.FromSeconds(30));
        using var client = await AgentryProcess.AdminClientAsync(baseAddress);
        var created = await (await client.PostJsonAsync("/api/v1/workspaces", new { name = "m", slug = "metrics" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        for (var i = 0; i < 3; i++)
        {
            (await client.GetAsync($"/api/v1/workspaces/{created.Id}")).EnsureSuccessStatusCode();
        }
        await client.GetAsync("/api/v1/nothing-here");

        string text = "";
        var complete = await HttpAssertions.EventuallyAsync(async () =>
        {
            text = await client.GetStringAsync("/metrics");
            return text.Contains("api_errors_total") && text.Contains("cache_hit_ratio");
        }, TimeSpan.FromSeconds(5));

        Assert.True(complete, text);
        Assert.Contains("# TYPE api_request_duration_seconds histogram", text);
        Assert.Matches(Series("api_request_duration_seconds_bucket", "endpoint=\"/api/v1/workspaces/{id:guid}\"", "method=\"GET\"", "status=\"200\""), text);
        Assert.Matches(Series("api_request_total", "endpoint=\"/api/v1/workspaces/\"", "method=\"POST\"", "status=\"201\"") + @" 1(\s|$)", text);
        Assert.Matches(Series("api_errors_total", "endpoint=\"unmatched\"", "error_type=\"not_found\"") + @" 1(\s|$)", text);
        Assert.Matches(Series("db_query_duration_seconds_bucket", "query_type=\"insert\""), text);
        Assert.Matches(Series("db_query_duration_seconds_bucket", "query_type=\"select\""), text);
        Assert.Matches(Series("active_connections", "service=\"database\"") + @" \d+", text);
        Assert.Matches(Series("active_connections", "service=\"http\"") + @" \d+", text);
        // One miss filled the cache, then the reads hit it: the ratio is strictly between 0 and 1.
        var ratio = double.Parse(System.Text.RegularExpressions.Regex.Match(text, @"cache_hit_ratio(\{[^}]*\})? ([0-9.eE+-]+)").Groups[2].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(ratio, 0.01, 0.99);
        Assert.Contains("cache_hits_total", text);
        Assert.Matches(Series("audit_events_total", "action=\"workspace.created\"", "outcome=\"success\"") + @" 1(\s|$)", text);
        Assert.Matches(Series("audit_events_total", "action=\"signin.succeeded\"", "outcome=\"success\"") + @" [1-9]", text);
    }

    /// <summary>A regex for one Prometheus sample line of <paramref name="name"/> carrying all the given labels (in name order).</summary>
    private static string Series(string name, params string[] labels) =>
        System.Text.RegularExpressions.Regex.Escape(name) + @"\{[^}]*" + string.Join(@"[^}]*", labels.Select(System.Text.RegularExpressions.Regex.Escape)) + @"[^}]*\}";
}
