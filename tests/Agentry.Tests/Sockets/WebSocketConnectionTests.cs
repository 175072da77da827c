using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Agentry.Tests.Sockets;

/// <summary><c>/api/v1/ws</c> with apps of their own: the browser's query-string token, and a client that stops reading.</summary>
public sealed class WebSocketConnectionTests
{
    [Fact]
    public async Task A_browser_s_access_token_in_the_query_string_authenticates_and_reaches_no_log()
    {
        var logs = new CapturedLogs();
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Trace",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace",
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "Trace",
            // An operator asking for the framework's request log explicitly still gets no token in it.
            ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "Trace",
        }, services => services.AddSingleton<ILoggerProvider>(logs));
        var workspace = await app.CreateWorkspaceAsync();
        var (_, email, password) = await app.CreateUserAsync(workspace, Roles.Member);
        var token = (await AgentryApp.RequestTokensAsync(app.Client(), email, password)).GetProperty("access_token").GetString()!;
        var task = await SocketTestData.InsertTaskWithEventsAsync(app, workspace, progress: 2, padding: 0);

        var before = logs.Entries.Count; // signing in logs the new token at trace level, as OpenIddict does
        await using (var socket = await SocketClient.ConnectAsync(app, null, null, $"?access_token={Uri.EscapeDataString(token)}&workspace={workspace}"))
        {
            Assert.Equal("ack", SocketClient.Op(await socket.RequestAsync(new { op = "subscribe", requestId = "s", stream = "task", id = task }, "s")));
            await socket.ReceiveUntilAsync(m => SocketClient.Op(m) == "event" && m.GetProperty("seq").GetInt64() == 3);
        }

        var during = logs.Entries.Skip(before).ToList();
        Assert.Contains(during, e => e.Level == LogLevel.Trace); // everything was logged that could be
        Assert.Contains(during, e => e.Text.Contains("/api/v1/ws", StringComparison.Ordinal));
        var secret = token[^32..];
        Assert.DoesNotContain(during, e => e.Text.Contains(secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_client_that_stops_reading_is_closed_with_1013_rather_than_buffered_for_and_resumes_from_the_log()
    {
        const int events = 1_000;
        var logs = new CapturedLogs();
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Agentry.Sockets"] = "Information",
            ["Agentry:WebSockets:SendQueueSize"] = "2",
            ["Agentry:WebSockets:SlowClientTimeout"] = "00:00:00.200",
            ["Agentry:WebSockets:CloseTimeout"] = "00:02:00",
        }, services =>
        {
            services.AddSingleton<ILoggerProvider>(logs);
            // A small, fixed send buffer (accepted sockets inherit it), as a slow network would leave: on loopback the kernel
            // would otherwise take megabytes before a send waits.
            services.Configure<SocketTransportOptions>(o => o.CreateBoundListenSocket = endpoint =>
            {
                var listener = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                listener.SendBufferSize = 8_192;
                return listener;
            });
        }, kestrel: true);
        var workspace = await app.CreateWorkspaceAsync();
        var member = await app.UserClientAsync(workspace, Roles.Member);
        // About a megabyte of events: far more than the socket buffers hold while nobody reads.
        var task = await SocketTestData.InsertTaskWithEventsAsync(app, workspace, events - 1, padding: 1_000);

        await using var client = await ConnectOverTcpAsync(app, member, workspace);
        await client.SendAsync(new { op = "subscribe", requestId = "s", stream = "task", id = task });
        // Not reading: the server's send queue fills and stays full, and the server gives up on the client.
        Assert.True(await HttpAssertions.EventuallyAsync(
            () => Task.FromResult(logs.Entries.Any(e => e.Text.Contains("too slow", StringComparison.Ordinal))), TimeSpan.FromMinutes(1)));

        // Reading now drains what was already on its way, in order, and then the close that says how to resume.
        long last = 0;
        while (await client.ReceiveAsync() is { } message)
        {
            if (SocketClient.Op(message) == "event")
            {
                Assert.Equal(last + 1, message.GetProperty("seq").GetInt64());
                last = message.GetProperty("seq").GetInt64();
            }
        }
        Assert.Equal((WebSocketCloseStatus)1013, client.Socket.CloseStatus);
        Assert.Contains("after", client.Socket.CloseStatusDescription);
        Assert.InRange(last, 1, events - 1);

        await using var again = await ConnectOverTcpAsync(app, member, workspace);
        await again.SendAsync(new { op = "subscribe", requestId = "r", stream = "task", id = task, after = last });
        var resumed = await again.ReceiveUntilAsync(m => SocketClient.Op(m) == "event");
        Assert.Equal(last + 1, resumed[^1].GetProperty("seq").GetInt64());
    }

    /// <summary>A real WebSocket over TCP whose receive buffer is small, so a client that does not read soon stops the server's sends.</summary>
    private static async Task<SocketClient> ConnectOverTcpAsync(AgentryApp app, HttpClient signedIn, Guid workspace)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", signedIn.DefaultRequestHeaders.Authorization!.ToString());
        socket.Options.SetRequestHeader(CurrentWorkspace.HeaderName, workspace.ToString());
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 4_096 };
                await tcp.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(tcp, ownsSocket: true);
            },
        };
        await socket.ConnectAsync(new Uri($"ws://{app.BaseUri.Authority}/api/v1/ws"), new HttpMessageInvoker(handler), CancellationToken.None);
        return new SocketClient(socket);
    }
}
