using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// A TCP forwarder on 127.0.0.1 in front of a server, whose open connections a test can reset at once: a network that
/// drops under a response already streaming, which a browser's offline emulation does not do. <c>POST {CutUrl}</c>
/// (a small Kestrel app on its own port, so a script outside the test process can pull the plug) resets every
/// connection open through it and answers <c>{"cut": n}</c>; new connections are forwarded as before.
/// </summary>
public sealed class CuttableProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly ConcurrentDictionary<Socket, Socket> _open = new();
    private readonly CancellationTokenSource _stop = new();
    private WebApplication _control = null!;
    private Task _accepting = Task.CompletedTask;

    private CuttableProxy(IPEndPoint target) => _target = target;

    /// <summary>The proxy's own address: use it where the target's would be.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Where a POST resets every connection open through the proxy.</summary>
    public Uri CutUrl { get; private set; } = null!;

    public static async Task<CuttableProxy> StartAsync(Uri target)
    {
        var proxy = new CuttableProxy(new IPEndPoint(IPAddress.Loopback, target.Port));
        proxy._listener.Start();
        proxy.Address = new Uri($"http://127.0.0.1:{((IPEndPoint)proxy._listener.LocalEndpoint).Port}/");
        proxy._accepting = proxy.AcceptAsync();

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        proxy._control = builder.Build();
        proxy._control.MapPost("/cut", () => Results.Json(new { cut = proxy.Cut() }));
        await proxy._control.StartAsync();
        proxy.CutUrl = new Uri(new Uri(proxy._control.Urls.First()), "/cut");
        return proxy;
    }

    /// <summary>Resets every open connection (an RST each way, as a dropped network shows); returns how many.</summary>
    public int Cut()
    {
        var cut = 0;
        foreach (var (client, upstream) in _open)
        {
            if (_open.TryRemove(client, out _))
            {
                Reset(client);
                Reset(upstream);
                cut++;
            }
        }
        return cut;
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await upstream.ConnectAsync(_target, _stop.Token);
            _open[client] = upstream;
            await Task.WhenAll(CopyAsync(client, upstream), CopyAsync(upstream, client));
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (SocketException)
        {
            // The target refused: the client sees its connection closed.
        }
        finally
        {
            _open.TryRemove(client, out _);
            client.Dispose();
            upstream.Dispose();
        }
    }

    /// <summary>Copies one direction until its end, which it passes on as a half-close; any failure (a cut, a reset, a stop) ends both.</summary>
    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            from.Close();
            to.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Cut();
        await _accepting;
        await _control.DisposeAsync();
        _stop.Dispose();
    }
}
