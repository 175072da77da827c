using System.Net;
using System.Text;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Hosting;

/// <summary>Every class of error is an RFC 9457 problem with a stable code, served by real Kestrel.</summary>
public sealed class ErrorResponseTests : IAsyncLifetime
{
    private readonly AgentryApp _app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Hosting:MaxRequestBodyBytes"] = "4096" }, kestrel: true);
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync() => _client = await _app.AdminClientAsync();

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task Unknown_route_is_404() =>
        await (await _client.GetAsync("/api/v1/no-such-thing")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");

    [Fact]
    public async Task Malformed_id_in_route_is_404() =>
        await (await _client.GetAsync("/api/v1/workspaces/not-a-guid")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");

    [Fact]
    public async Task Wrong_method_is_405() =>
        await (await _client.PutAsync("/api/v1/workspaces", Json("{}"))).AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method_not_allowed");

    [Fact]
    public async Task Body_over_the_limit_is_413()
    {
        var big = $$"""{"name":"n","slug":"s","description":"{{new string('x', 8_000)}}"}""";

        await (await _client.PostAsync("/api/v1/workspaces", Json(big))).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
    }

    [Fact]
    public async Task Chunked_body_over_the_limit_is_413()
    {
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(new string(' ', 10_000) + "{}")));
        content.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/workspaces") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        await (await _client.SendAsync(request)).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
    }

    [Fact]
    public async Task Malformed_json_is_400()
    {
        var problem = await (await _client.PostAsync("/api/v1/workspaces", Json("""{"name": "x", """))).AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");

        Assert.Contains("JSON", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Json_of_the_wrong_type_is_400_naming_the_path()
    {
        var problem = await (await _client.PostAsync("/api/v1/workspaces", Json("""{"name": 5, "slug": "s"}"""))).AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");

        Assert.Contains("$.name", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Validation_failure_is_400_with_field_errors()
    {
        var problem = await (await _client.PostAsync("/api/v1/workspaces", Json("""{"name": "", "slug": "UPPER"}"""))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        var errors = problem.GetProperty("errors");
        Assert.Equal(2, errors.EnumerateObject().Count());
        Assert.NotEmpty(errors.GetProperty("name").EnumerateArray());
        Assert.NotEmpty(errors.GetProperty("slug").EnumerateArray());
    }

    [Fact]
    public async Task Missing_body_is_400() =>
        await (await _client.PostAsync("/api/v1/workspaces", Json(""))).AssertProblemAsync(HttpStatusCode.BadRequest, "bad_request");

    [Fact]
    public async Task Wrong_content_type_is_415() =>
        await (await _client.PostAsync("/api/v1/workspaces", new StringContent("""{"name":"n","slug":"s"}""", Encoding.UTF8, "text/plain")))
            .AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");

    [Fact]
    public async Task Oversized_headers_are_refused_by_kestrel()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Add("X-Big", new string('a', 40_000));

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, (await _client.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task Responses_carry_no_server_header()
    {
        var response = await _client.GetAsync("/health");

        Assert.Empty(response.Headers.Server);
    }

    [Fact]
    public async Task Unhandled_exception_is_500_with_trace_id_and_no_internals()
    {
        var clock = new BrokenClock();
        await using var app = AgentryApp.Sqlite(services: s => s.AddSingleton<TimeProvider>(clock), kestrel: true);
        var client = await app.AdminClientAsync();
        clock.Broken = true;

        var response = await client.PostAsync("/api/v1/workspaces", Json("""{"name": "n", "slug": "s"}"""));

        var problem = await response.AssertProblemAsync(HttpStatusCode.InternalServerError, "internal_error");
        var text = problem.ToString();
        Assert.DoesNotContain(BrokenClock.Secret, text);
        Assert.DoesNotContain(nameof(BrokenClock), text);
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$", problem.GetProperty("traceId").GetString());
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private sealed class BrokenClock : TimeProvider
    {
        public const string Secret = "connection-password-hunter2";

        public bool Broken { get; set; }

        // Breaks only inside the workspace handler; token validation and sign-in use the clock too.
        public override DateTimeOffset GetUtcNow() =>
            Broken && new System.Diagnostics.StackTrace().ToString().Contains("WorkspaceEndpoints")
                ? throw new InvalidOperationException(Secret)
                : base.GetUtcNow();
    }
}
