using System.Net;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Hosting;

public sealed class WebHygieneTests
{
    private const string Console = "https://console.example.com";

    [Fact]
    public async Task Cors_answers_only_the_configured_origins()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Hosting:CorsOrigins:0"] = Console });
        var client = app.Client();

        var allowed = await client.SendAsync(Preflight(Console));
        var other = await client.SendAsync(Preflight("https://evil.example.com"));

        Assert.Equal(Console, Assert.Single(allowed.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.False(allowed.Headers.Contains("Access-Control-Allow-Credentials"));
        Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Without_configuration_no_origin_is_allowed()
    {
        await using var app = AgentryApp.Sqlite();
        var client = app.Client();
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/workspaces");
        request.Headers.Add("Origin", Console);

        var response = await client.SendAsync(request);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False((await client.SendAsync(Preflight(Console))).Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData("/api/v1/workspaces")]
    [InlineData("/api/v1/no-such-route")]
    [InlineData("/health")]
    public async Task Responses_carry_security_headers(string path)
    {
        await using var app = AgentryApp.Sqlite(kestrel: true);
        var client = app.Client();

        var response = await client.GetAsync(path);

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
        Assert.False(response.Headers.Contains("Strict-Transport-Security")); // plain http
    }

    [Fact]
    public async Task Forwarded_headers_count_only_from_a_trusted_proxy()
    {
        await using var trusting = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Hosting:TrustedProxies:0"] = "127.0.0.0/8" }, kestrel: true);
        await using var untrusting = AgentryApp.Sqlite(kestrel: true);

        // The scheme the proxy saw shows in HSTS, which is only sent over https.
        var viaProxy = await trusting.Client().SendAsync(ForwardedAsHttps());
        var spoofed = await untrusting.Client().SendAsync(ForwardedAsHttps());

        Assert.True(viaProxy.Headers.Contains("Strict-Transport-Security"));
        Assert.False(spoofed.Headers.Contains("Strict-Transport-Security"));
    }

    private static HttpRequestMessage Preflight(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, "/api/v1/workspaces");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        return request;
    }

    private static HttpRequestMessage ForwardedAsHttps()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Add("X-Forwarded-For", "203.0.113.9");
        request.Headers.Add("X-Forwarded-Proto", "https");
        return request;
    }
}
