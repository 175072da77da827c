using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;

namespace Agentry.Tests.Sockets;

/// <summary>A WebSocket client of <c>/api/v1/ws</c> speaking its JSON messages, over the in-memory test server or a real socket.</summary>
public sealed class SocketClient(WebSocket socket) : IAsyncDisposable
{
    public WebSocket Socket { get; } = socket;

    /// <summary>Connects through the in-memory server with the credentials of <paramref name="client"/> (its Authorization header) in <paramref name="workspace"/>.</summary>
    public static async Task<SocketClient> ConnectAsync(AgentryApp app, HttpClient? client, Guid? workspace, string query = "")
    {
        var sockets = app.Server.CreateWebSocketClient();
        sockets.ConfigureRequest = request =>
        {
            if (client?.DefaultRequestHeaders.Authorization is { } authorization)
            {
                request.Headers.Authorization = authorization.ToString();
            }
            if (workspace is { } id)
            {
                request.Headers[CurrentWorkspace.HeaderName] = id.ToString();
            }
        };
        return new SocketClient(await sockets.ConnectAsync(new Uri(app.Server.BaseAddress, "/api/v1/ws" + query), CancellationToken.None));
    }

    /// <summary>The status an upgrade is refused with through the in-memory server (the test host reports it in its exception).</summary>
    public static async Task<int> RefusalAsync(AgentryApp app, HttpClient? client, Guid? workspace, string query = "")
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ConnectAsync(app, client, workspace, query));
        var marker = "status code: ";
        Assert.Contains(marker, error.Message);
        return int.Parse(error.Message[(error.Message.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..]);
    }

    public Task SendAsync(object message) => SendTextAsync(JsonSerializer.Serialize(message, JsonSerializerOptions.Web));

    public Task SendTextAsync(string text) => Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>The next message, or null when the server closed the connection (see <see cref="WebSocket.CloseStatus"/>).</summary>
    public async Task<JsonElement?> ReceiveAsync()
    {
        var buffer = new byte[8_192];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await Socket.ReceiveAsync(buffer, CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return JsonDocument.Parse(message.ToArray()).RootElement.Clone();
            }
        }
    }

    /// <summary>Messages until (and with) the first that <paramref name="last"/> accepts; fails if the connection closes first.</summary>
    public async Task<List<JsonElement>> ReceiveUntilAsync(Func<JsonElement, bool> last)
    {
        var messages = new List<JsonElement>();
        while (true)
        {
            var message = await ReceiveAsync();
            Assert.True(message is not null, $"the server closed the connection ({Socket.CloseStatus} {Socket.CloseStatusDescription}) after {messages.Count} messages");
            messages.Add(message.Value);
            if (last(message.Value))
            {
                return messages;
            }
        }
    }

    /// <summary>Messages until both <paramref name="one"/> and <paramref name="other"/> have matched one (in either order).</summary>
    public async Task<List<JsonElement>> ReceiveUntilBothAsync(Func<JsonElement, bool> one, Func<JsonElement, bool> other)
    {
        var messages = await ReceiveUntilAsync(m => one(m) || other(m));
        var missing = one(messages[^1]) ? other : one;
        if (!messages.Any(missing))
        {
            messages.AddRange(await ReceiveUntilAsync(missing));
        }
        return messages;
    }

    /// <summary>Sends a request and returns the answer to it (its <c>ack</c>, <c>error</c> or <c>pong</c>), skipping events.</summary>
    public async Task<JsonElement> RequestAsync(object message, string requestId)
    {
        await SendAsync(message);
        return (await ReceiveUntilAsync(m => IsAnswerTo(m, requestId)))[^1];
    }

    public static bool IsAnswerTo(JsonElement message, string requestId) =>
        message.GetProperty("op").GetString() is "ack" or "error" or "pong"
        && message.TryGetProperty("requestId", out var id) && (id.ValueKind == JsonValueKind.String ? id.GetString() : id.GetRawText()) == requestId;

    public static string Op(JsonElement message) => message.GetProperty("op").GetString()!;

    /// <summary>Completes the closing handshake when the server has not ended the connection already.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
        {
            // The server has already let go of the connection.
        }
        Socket.Dispose();
    }
}

/// <summary>Every log entry the app writes, at every level: category, level, and message with its structured values.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Text)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(' ', pairs.Select(p => $"{p.Key}={p.Value}")) : "";
            logs.Entries.Enqueue((category, logLevel, $"{formatter(state, exception)} {values} {exception}"));
        }
    }
}
