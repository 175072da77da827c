using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Agentry.Tests.Tasks;

/// <summary>One call the receiver took: its path, headers and exact body bytes.</summary>
public sealed record ReceivedCall(string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Header(string name) => Headers.TryGetValue(name, out var value) ? value : throw new Xunit.Sdk.XunitException($"no {name} header");
}

/// <summary>How the receiver answers one call; <see cref="Hang"/> answers only when the caller gives up.</summary>
public sealed record Reply(int Status, string? Body = null, string ContentType = "application/json", bool Hang = false);

/// <summary>
/// A real HTTP server on 127.0.0.1 (Kestrel, own port) that records every POST and answers each path from a
/// script: the replies in order, the last one repeated.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Reply[]> _scripts = new();
    private readonly ConcurrentDictionary<string, int> _counts = new();
    private readonly ConcurrentQueue<ReceivedCall> _calls = new();

    private WebhookReceiver(WebApplication app) => _app = app;

    public IReadOnlyCollection<ReceivedCall> Calls => _calls;

    public Uri BaseUri { get; private set; } = null!;

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var receiver = new WebhookReceiver(builder.Build());
        receiver._app.MapPost("/{**path}", receiver.ReceiveAsync);
        await receiver._app.StartAsync();
        receiver.BaseUri = new Uri(receiver._app.Urls.First());
        return receiver;
    }

    /// <summary>A URL on this receiver answering with <paramref name="replies"/> (default: 200 and <c>{"ok":true}</c>).</summary>
    public string Url(string path, params Reply[] replies)
    {
        _scripts[path] = replies.Length == 0 ? [new Reply(200, """{"ok":true}""")] : replies;
        return new Uri(BaseUri, path).ToString();
    }

    public List<ReceivedCall> CallsTo(string path) => _calls.Where(c => c.Path == path).ToList();

    private async Task ReceiveAsync(HttpContext context)
    {
        var path = context.Request.Path.Value!.TrimStart('/');
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        _calls.Enqueue(new ReceivedCall(path, context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), body.ToArray()));
        var script = _scripts.GetValueOrDefault(path, [new Reply(404)]);
        var n = _counts.AddOrUpdate(path, 1, (_, c) => c + 1);
        var reply = script[Math.Min(n, script.Length) - 1];
        if (reply.Hang)
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }
        context.Response.StatusCode = reply.Status;
        if (reply.Body is not null)
        {
            context.Response.ContentType = reply.ContentType;
            await context.Response.WriteAsync(reply.Body, context.RequestAborted);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stopping.Token);
        await _app.DisposeAsync();
    }
}
