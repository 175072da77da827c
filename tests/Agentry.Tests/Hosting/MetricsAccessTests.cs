using System.Net;
using System.Net.Http.Headers;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Hosting;

public sealed class MetricsAccessTests
{
    private const string Token = "scrape-token-0123456789";

    [Fact]
    public async Task With_a_metrics_token_only_scrapers_presenting_it_are_answered()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Telemetry:MetricsToken"] = Token });

        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Client().GetAsync("/metrics")).StatusCode);
        var wrong = app.Client();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/metrics")).StatusCode);
        var scraper = app.Client();
        scraper.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        var scraped = await scraper.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
        // Probes stay open.
        Assert.Equal(HttpStatusCode.OK, (await app.Client().GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task Without_a_metrics_token_metrics_are_open()
    {
        await using var app = AgentryApp.Sqlite();

        Assert.Equal(HttpStatusCode.OK, (await app.Client().GetAsync("/metrics")).StatusCode);
    }
}
