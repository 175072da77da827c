using System.Diagnostics;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// A real ChromaDB server (the npm package <c>chromadb</c>, whose native binding carries the server) that scripts/test.sh
/// installs (<c>AGENTRY_TEST_CHROMA</c>, <c>AGENTRY_TEST_NODE</c>), on a free loopback port with a data directory of its
/// own, stopped on dispose. In CI a missing install fails the test; locally the test is skipped with the reason.
/// </summary>
public sealed class ChromaServer : IAsyncLifetime
{
    private Process? _process;
    private string _directory = "";
    private string? _missing;
    private int _port;

    /// <summary>The server's base URL; a test that asks for it is skipped (locally) when the server is not installed.</summary>
    public string Url
    {
        get
        {
            if (_missing is not null)
            {
                Assert.Skip(_missing);
            }
            return $"http://127.0.0.1:{_port}";
        }
    }

    public async ValueTask InitializeAsync()
    {
        if (Cli() is not { } cli)
        {
            return;
        }
        // The server exits (code 0) when its port is taken meanwhile: then another port.
        for (var attempt = 0; attempt < 3; attempt++)
        {
            _port = RedisProcess.FreePort();
            _directory = TempFiles.Directory();
            var start = new ProcessStartInfo
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var argument in new[] { cli, "run", "--path", _directory, "--host", "127.0.0.1", "--port", _port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            {
                start.ArgumentList.Add(argument);
            }
            start.FileName = Environment.GetEnvironmentVariable("AGENTRY_TEST_NODE")!;
            _process = Process.Start(start)!;
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            if (await HeartbeatAsync(_process))
            {
                return;
            }
            await StopAsync();
        }
        throw new InvalidOperationException("The ChromaDB server did not answer its heartbeat.");
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task<bool> HeartbeatAsync(Process process)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{_port}/api/v2/heartbeat")).IsSuccessStatusCode)
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        return false;
    }

    private async Task StopAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
            process.Dispose();
            _process = null;
        }
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    /// <summary>The server's entry point, or null (with the reason kept) when it is not installed; in CI that is a failure.</summary>
    private string? Cli()
    {
        var root = Environment.GetEnvironmentVariable("AGENTRY_TEST_CHROMA");
        var node = Environment.GetEnvironmentVariable("AGENTRY_TEST_NODE");
        var path = root is { Length: > 0 } ? Path.Combine(root, "node_modules", "chromadb", "dist", "cli.mjs") : null;
        var why = path is null ? "AGENTRY_TEST_CHROMA is not set"
            : node is not { Length: > 0 } ? "AGENTRY_TEST_NODE is not set"
            : !File.Exists(path) ? $"{path} does not exist"
            : null;
        if (why is null)
        {
            return path;
        }
        _missing = $"The ChromaDB server is missing ({why}); run ./scripts/test.sh, which installs it.";
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            throw new InvalidOperationException(_missing);
        }
        return null;
    }
}
