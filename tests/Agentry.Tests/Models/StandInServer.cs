using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Agentry.Tests.Models;

/// <summary>One request a stand-in took: method, path, headers and JSON body (if any), and its query string.</summary>
public sealed record StandInRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, JsonElement? Body)
{
    /// <summary>Each query parameter's value (the first, when repeated).</summary>
    public IReadOnlyDictionary<string, string> Query { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// A real HTTP server on 127.0.0.1 (Kestrel, port 0) that speaks a model server's documented wire format, for
/// protocol tests of the providers (no model server can run on these machines). It records every request.
/// </summary>
public sealed class StandInServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<StandInRequest> _requests = new();

    private StandInServer(WebApplication app) => _app = app;

    public Uri BaseUri { get; private set; } = null!;

    public IReadOnlyCollection<StandInRequest> Requests => _requests;

    public StandInRequest Single(string method, string path) => Assert.Single(_requests, r => r.Method == method && r.Path == path);

    public static async Task<StandInServer> StartAsync(Action<WebApplication> routes)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var server = new StandInServer(builder.Build());
        server._app.Use(server.RecordAsync);
        routes(server._app);
        await server._app.StartAsync();
        server.BaseUri = new Uri(server._app.Urls.First());
        return server;
    }

    private async Task RecordAsync(HttpContext context, RequestDelegate next)
    {
        context.Request.EnableBuffering();
        JsonElement? body = null;
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding == "chunked")
        {
            body = (await JsonDocument.ParseAsync(context.Request.Body)).RootElement.Clone();
            context.Request.Body.Position = 0;
        }
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        _requests.Enqueue(new StandInRequest(context.Request.Method, context.Request.Path.Value!, headers, body)
        {
            Query = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.FirstOrDefault() ?? "", StringComparer.Ordinal),
        });
        await next(context);
    }

    /// <summary>Writes <paramref name="lines"/> one at a time, flushing each, as a streaming server does.</summary>
    public static async Task StreamAsync(HttpResponse response, string contentType, IEnumerable<string> lines)
    {
        response.ContentType = contentType;
        foreach (var line in lines)
        {
            await response.WriteAsync(line);
            await response.Body.FlushAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stopping.Token);
        await _app.DisposeAsync();
    }
}
