using System.Collections.Concurrent;
using System.Text;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Agentry.Tests.Hosting;

/// <summary>
/// No OpenTelemetry collector can be installed on these machines (it is neither a Debian nor an npm
/// package), so a loopback listener stands in for one: it records what arrives on the documented
/// OTLP/HTTP paths (POST /v1/traces, /v1/metrics, /v1/logs with application/x-protobuf bodies).
/// </summary>
public sealed class TelemetryExportTests
{
    [Fact]
    public async Task Traces_are_exported_over_OTLP_http_to_a_receiver_stand_in()
    {
        var received = new ConcurrentQueue<(string Path, string ContentType, byte[] Body)>();
        await using var receiver = await StartReceiverAsync(received);
        var endpoint = receiver.Urls.First();

        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Telemetry:OtlpEndpoint"] = endpoint,
            ["Agentry:Telemetry:OtlpProtocol"] = "http/protobuf",
            ["Agentry:Telemetry:ServiceName"] = "agentry-otlp-test",
        });
        var client = await app.AdminClientAsync();
        (await client.GetAsync("/api/v1/workspaces")).EnsureSuccessStatusCode();
        // The batch exporter sends every few seconds; the sign-in and the request may land in different batches.
        await HttpAssertions.EventuallyAsync(() => Task.FromResult(TracePayload(received).Contains("/api/v1/workspaces")), TimeSpan.FromSeconds(20));

        var traces = received.Where(r => r.Path == "/v1/traces").ToList();
        Assert.True(traces.Count > 0, $"nothing on /v1/traces at {endpoint}; got: {string.Join(", ", received.Select(r => r.Path))}");
        Assert.All(traces, t => Assert.Equal("application/x-protobuf", t.ContentType));
        var payload = TracePayload(received);
        Assert.Contains("agentry-otlp-test", payload);
        Assert.Contains("/api/v1/workspaces", payload);
    }

    private static string TracePayload(ConcurrentQueue<(string Path, string ContentType, byte[] Body)> received) =>
        Encoding.UTF8.GetString(received.Where(r => r.Path == "/v1/traces").SelectMany(r => r.Body).ToArray());

    private static async Task<WebApplication> StartReceiverAsync(ConcurrentQueue<(string, string, byte[])> received)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var receiver = builder.Build();
        receiver.MapPost("/v1/{signal}", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            received.Enqueue((request.Path.Value!, request.ContentType ?? "", body.ToArray()));
            return Results.Ok();
        });
        await receiver.StartAsync();
        return receiver;
    }
}
