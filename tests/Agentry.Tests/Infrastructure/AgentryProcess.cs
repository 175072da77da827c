using System.Collections.Concurrent;
using System.Diagnostics;

namespace Agentry.Tests.Infrastructure;

/// <summary>The shipped program run as a real process (dotnet Agentry.dll), for start-up, exit and signal behaviour.</summary>
public sealed class AgentryProcess : IAsyncDisposable
{
    private readonly Process _process;

    private AgentryProcess(Process process) => _process = process;

    public ConcurrentQueue<string> Stdout { get; } = new();

    public ConcurrentQueue<string> Stderr { get; } = new();

    public int Id => _process.Id;

    /// <summary>Where it listens, when the starter recorded it.</summary>
    public Uri? BaseAddress { get; set; }

    public bool HasExited => _process.HasExited;

    public static AgentryProcess Start(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Agentry.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Agentry__", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["AGENTRY_SECRETS_DIR"] = Path.Combine(workingDirectory, "no-secrets");
        start.Environment["Agentry__Bootstrap__AdminEmail"] = AgentryApp.AdminEmail;
        start.Environment["Agentry__Bootstrap__AdminPassword"] = AgentryApp.AdminPassword;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        // An empty value means "leave this setting unset".
        foreach (var key in environment.Where(e => e.Value.Length == 0).Select(e => e.Key))
        {
            start.Environment.Remove(key);
        }
        var process = new AgentryProcess(Process.Start(start)!);
        process._process.OutputDataReceived += (_, e) => { if (e.Data is not null) process.Stdout.Enqueue(e.Data); };
        process._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) process.Stderr.Enqueue(e.Data); };
        process._process.BeginOutputReadLine();
        process._process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Starts a node with <paramref name="settings"/> (configuration keys, passed as environment variables) on a free
    /// loopback port and waits until it is healthy.
    /// </summary>
    public static async Task<AgentryProcess> StartNodeAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var environment = settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value ?? "");
        var address = new Uri($"http://127.0.0.1:{RedisProcess.FreePort()}");
        var node = Start(TempFiles.Directory(), environment, "--urls", address.ToString());
        await node.WaitUntilHealthyAsync(address, TimeSpan.FromSeconds(60));
        node.BaseAddress = address;
        return node;
    }

    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(timeout.Token);
        _process.WaitForExit(); // flushes the redirected streams
        return _process.ExitCode;
    }

    /// <summary>Kills the process at once (SIGKILL): no shutdown code runs, as when a machine dies.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>Asks the process to stop the way an orchestrator does (SIGTERM).</summary>
    public void Terminate() => Process.Start("kill", ["-TERM", _process.Id.ToString()])!.WaitForExit();

    public async Task WaitUntilHealthyAsync(Uri baseAddress, TimeSpan within)
    {
        using var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var healthy = await HttpAssertions.EventuallyAsync(async () =>
        {
            try
            {
                return (await client.GetAsync("/health")).IsSuccessStatusCode;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                // Refused, or accepted but not answered within the probe's timeout while a loaded machine starts it.
                return false;
            }
        }, within);
        Assert.True(healthy, $"Agentry did not become healthy. stderr: {string.Join('\n', Stderr)} stdout: {string.Join('\n', Stdout.TakeLast(20))}");
    }

    /// <summary>A client of the running process, signed in as the bootstrap administrator.</summary>
    public static async Task<HttpClient> AdminClientAsync(Uri baseAddress)
    {
        var client = new HttpClient { BaseAddress = baseAddress };
        var tokens = await AgentryApp.RequestTokensAsync(client, AgentryApp.AdminEmail, AgentryApp.AdminPassword);
        client.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        return client;
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
