using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Agentry.Tests.Infrastructure;

/// <summary>A redis-server of the test's own, on a free loopback port, that the test may stop and restart.</summary>
public sealed class RedisProcess : IAsyncDisposable
{
    private Process? _process;

    public int Port { get; } = FreePort();

    public string Configuration => $"127.0.0.1:{Port}";

    public async Task StartAsync()
    {
        _process = Process.Start(new ProcessStartInfo(TestServers.RedisServerBinary,
            ["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        for (var i = 0; i < 100 && !await AcceptsAsync(); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(await AcceptsAsync(), $"redis-server did not start on port {Port}");
    }

    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<bool> AcceptsAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
