using System.Diagnostics;
using System.Net.Sockets;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// The MCP reference servers from npm that scripts/test.sh installs (<c>AGENTRY_TEST_MCP_SERVERS</c>, <c>AGENTRY_TEST_NODE</c>).
/// In CI a missing install fails the test; locally the test is skipped with the reason.
/// </summary>
public static class McpTestServers
{
    public static string Node => Require("AGENTRY_TEST_NODE");

    /// <summary><c>@modelcontextprotocol/server-everything</c>'s entry point: <c>node {this} stdio|streamableHttp</c>.</summary>
    public static string Everything => Entry("server-everything");

    /// <summary><c>@modelcontextprotocol/server-filesystem</c>'s entry point: <c>node {this} DIR...</c>.</summary>
    public static string Filesystem => Entry("server-filesystem");

    /// <summary>The official TypeScript SDK the servers depend on, for a test's own server.</summary>
    public static string Sdk => Path.Combine(Require("AGENTRY_TEST_MCP_SERVERS"), "sdk");

    private static string Entry(string package)
    {
        var path = Path.Combine(Require("AGENTRY_TEST_MCP_SERVERS"), package, "dist", "index.js");
        return File.Exists(path) ? path : Missing($"{path} does not exist");
    }

    private static string Require(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : Missing($"{variable} is not set");

    private static string Missing(string why)
    {
        var message = $"The MCP reference servers are missing ({why}); run ./scripts/test.sh, which installs them.";
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            throw new InvalidOperationException(message);
        }
        Assert.Skip(message);
        return "";
    }

    /// <summary>The stdio child processes of this test process running <paramref name="entry"/> with <paramref name="marker"/> in their environment.</summary>
    public static IReadOnlyList<int> ChildrenWith(string entry, string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }
            try
            {
                var parent = File.ReadLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
                if (parent is null || int.Parse(parent[5..].Trim()) != Environment.ProcessId)
                {
                    continue;
                }
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(entry, StringComparison.Ordinal)
                    && File.ReadAllText(Path.Combine(dir, "environ")).Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // the process ended while being read
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return found;
    }
}

/// <summary>server-everything in its Streamable HTTP mode on a free loopback port, stopped on dispose.</summary>
public sealed class EverythingHttpServer : IAsyncDisposable
{
    private readonly Process _process;

    private EverythingHttpServer(Process process, int port) => (_process, Port) = (process, port);

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/mcp";

    public static async Task<EverythingHttpServer> StartAsync()
    {
        var port = RedisProcess.FreePort();
        var start = new ProcessStartInfo(McpTestServers.Node) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(McpTestServers.Everything);
        start.ArgumentList.Add("streamableHttp");
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var process = Process.Start(start)!;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var server = new EverythingHttpServer(process, port);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return server;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        await server.DisposeAsync();
        throw new InvalidOperationException($"server-everything did not listen on port {port}.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
