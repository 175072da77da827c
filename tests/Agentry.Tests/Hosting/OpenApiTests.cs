using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Hosting;

public sealed class OpenApiTests
{
    /// <summary>Generated from the app's own endpoint table, so a new endpoint cannot slip past the document.</summary>
    [Fact]
    public async Task Every_api_endpoint_is_documented_with_its_error_responses()
    {
        await using var app = AgentryApp.Sqlite();
        var client = app.Client();
        var document = JsonDocument.Parse(await client.GetStringAsync("/openapi/v1.json")).RootElement;
        var paths = document.GetProperty("paths");

        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/api/", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(endpoints);
        foreach (var endpoint in endpoints)
        {
            var path = System.Text.RegularExpressions.Regex.Replace(endpoint.RoutePattern.RawText!.TrimEnd('/'), @"\{(\w+):[^}]+\}", "{$1}");
            Assert.True(paths.TryGetProperty(path, out var item) || paths.TryGetProperty(path + "/", out item), $"{path} is not in the OpenAPI document");
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods)
            {
                Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out var operation), $"{method} {path} is not in the OpenAPI document");
                var responses = operation.GetProperty("responses");
                // A WebSocket endpoint succeeds with 101 Switching Protocols.
                Assert.True(responses.EnumerateObject().Any(r => r.Name.StartsWith('2') || r.Name == "101"), $"{method} {path} documents no success response");
                Assert.True(responses.TryGetProperty("500", out _), $"{method} {path} does not document 500");
                Assert.True(responses.TryGetProperty("401", out _), $"{method} {path} does not document 401");
                Assert.True(responses.TryGetProperty("429", out _), $"{method} {path} does not document 429");
                if (path.Contains("{id}"))
                {
                    Assert.True(responses.TryGetProperty("404", out _), $"{method} {path} does not document 404");
                }
                if (method is "POST" or "PATCH" or "PUT")
                {
                    Assert.True(responses.TryGetProperty("400", out _), $"{method} {path} does not document 400");
                }
            }
        }
    }

    [Fact]
    public async Task Interactive_docs_are_served_at_docs()
    {
        await using var app = AgentryApp.Sqlite();
        var client = app.Client();

        var redirect = await client.GetAsync("/docs");
        Assert.Equal(System.Net.HttpStatusCode.Found, redirect.StatusCode);

        var page = await client.GetAsync("/docs/");
        page.EnsureSuccessStatusCode();
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("openapi/v1.json", html);
        Assert.DoesNotContain("https://", html); // assets are served locally, not from a CDN
        (await client.GetAsync("/docs/scalar.js")).EnsureSuccessStatusCode();
    }
}
