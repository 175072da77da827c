using System.Net;
using System.Text.Json;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Hosting;

public sealed class HealthTests
{
    [Fact]
    public async Task Ready_reports_each_dependency_when_healthy()
    {
        await using var app = AgentryApp.Sqlite();
        var client = app.Client();

        var ready = await client.GetAsync("/health/ready");

        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("healthy", body.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
        Assert.Equal("Healthy", await client.GetStringAsync("/health"));
        // The probe's verdict is a gauge: the node and each check.
        await AssertReadinessGaugeAsync(client, ("all", 1), ("database", 1));
    }

    [Fact]
    public async Task With_the_database_down_liveness_is_200_readiness_503_and_requests_get_503()
    {
        var unreachable = $"Host=127.0.0.1;Port={RedisProcess.FreePort()};Username=u;Password=p;Database=d;Timeout=2";
        await using var app = new AgentryApp(Settings.Postgres(unreachable).With(new Dictionary<string, string?>
        {
            ["Agentry:Storage:MigrateOnStart"] = "false",
        }));
        var client = app.Client();

        Assert.Equal("Healthy", await client.GetStringAsync("/health"));

        var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.Equal("unhealthy", body.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
        await AssertReadinessGaugeAsync(client, ("all", 0), ("database", 0));

        var signIn = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = AgentryApp.AdminEmail, ["password"] = AgentryApp.AdminPassword,
        }));
        await signIn.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.NotNull(signIn.Headers.RetryAfter);
    }

    /// <summary><c>readiness_status</c> on /metrics holds these values for these checks (the exporter caches a scrape briefly).</summary>
    private static async Task AssertReadinessGaugeAsync(HttpClient client, params (string Check, double Value)[] expected)
    {
        var text = "";
        var matched = await HttpAssertions.EventuallyAsync(async () =>
        {
            text = await client.GetStringAsync("/metrics");
            return expected.All(e => PrometheusText.Samples(text, "readiness_status{", $"check=\"{e.Check}\"").SequenceEqual([e.Value]));
        }, TimeSpan.FromSeconds(5));
        Assert.True(matched, string.Join('\n', text.Split('\n').Where(l => l.StartsWith("readiness_status{", StringComparison.Ordinal))));
    }
}
