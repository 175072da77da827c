using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Agentry.Tests.Models;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// The cluster <c>scripts/cluster.sh</c> starts (PostgreSQL, Redis, RabbitMQ, ChromaDB, 2 API nodes, 2 workers, nginx), run
/// by the script itself from this build's Agentry.dll, in a directory and on ports of its own. The nodes chat with the
/// tiny GGUF model and deliver webhooks to loopback. Stopped on dispose.
/// </summary>
public sealed class LocalCluster : IAsyncLifetime
{
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(4);

    private readonly string _directory = TempFiles.Directory();
    private int _port;

    /// <summary>nginx, in front of both API nodes.</summary>
    public Uri Balancer => Url(0);

    public Uri Node(string node) => Url(node switch { "api-1" => 1, "api-2" => 2, "worker-1" => 3, "worker-2" => 4, _ => throw new ArgumentOutOfRangeException(nameof(node)) });

    public async ValueTask InitializeAsync()
    {
        _port = FreePortRun(6);
        TinyGguf.Write(Path.Combine(_directory, "tiny.gguf"));
        await RunAsync("start");
    }

    /// <summary>Starts whatever is down (a killed node comes back), and waits until every part answers.</summary>
    public Task EnsureUpAsync() => RunAsync("start");

    /// <summary>SIGKILL: the node dies without a word, mid-request.</summary>
    public Task KillAsync(string node) => RunAsync("kill", node);

    public HttpClient Client(Uri baseAddress, string? bearer = null)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (bearer is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsync("stop");
        }
        catch (Exception)
        {
            // Stopping is best effort: the test has its verdict.
        }
    }

    private Uri Url(int offset) => new($"http://127.0.0.1:{_port + offset}");

    private async Task RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(Checkout.Root, "scripts", "cluster.sh"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Agentry__", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        foreach (var (key, value) in Settings())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/cluster.sh {string.Join(' ', args)} failed ({process.ExitCode}):\n{output}\n{LogTails()}");
        }
    }

    private Dictionary<string, string> Settings() => new()
    {
        ["AGENTRY_CLUSTER_DIR"] = _directory,
        ["AGENTRY_CLUSTER_PORT"] = _port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["AGENTRY_CLUSTER_APP"] = AppContext.BaseDirectory,
        ["Agentry__Bootstrap__AdminEmail"] = AgentryApp.AdminEmail,
        ["Agentry__Bootstrap__AdminPassword"] = AgentryApp.AdminPassword,
        ["Agentry__Llm__Providers__0__Name"] = "local",
        ["Agentry__Llm__Providers__0__Kind"] = "llamacpp",
        ["Agentry__Llm__Providers__0__Path"] = Path.Combine(_directory, "tiny.gguf"),
        ["Agentry__Llm__Providers__0__Threads"] = "1",
        ["Agentry__Chat__ReplyLease"] = "00:00:04",
        ["Agentry__Queue__Lease"] = Lease.ToString(),
        ["Agentry__Queue__Heartbeat"] = "00:00:00.500",
        ["Agentry__Queue__RetryBaseDelay"] = "00:00:00.100",
        ["Agentry__Queue__RetryMaxDelay"] = "00:00:00.500",
        ["Agentry__Queue__RepublishAfter"] = "00:00:10",
        ["Agentry__Egress__AllowedNetworks__0"] = "127.0.0.1/32",
        ["Agentry__RateLimits__Enabled"] = "false",
    };

    private string LogTails() => string.Join('\n', Directory.Exists(_directory)
        ? Directory.GetFiles(_directory, "*.log").Select(f => $"--- {Path.GetFileName(f)}\n{string.Join('\n', File.ReadLines(f).TakeLast(15))}")
        : []);

    /// <summary>The first of <paramref name="count"/> consecutive free loopback ports.</summary>
    private static int FreePortRun(int count)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var first = Random.Shared.Next(20_000, 32_000);
            if (Enumerable.Range(first, count).All(IsFree))
            {
                return first;
            }
        }
        throw new InvalidOperationException($"no {count} consecutive free ports");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(System.Net.IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
