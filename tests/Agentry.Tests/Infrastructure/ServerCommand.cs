using System.Diagnostics;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// Runs a server's command-line tool the way scripts/services.sh does: as the server's own user when the
/// tests run as root (PostgreSQL refuses root; RabbitMQ's Erlang cookie lives in its user's home), with
/// output into a log file rather than a pipe, so a daemon it leaves behind holds no pipe of ours open.
/// </summary>
internal static class ServerCommand
{
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string user, string directory, string program, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var log = Path.Combine(directory, $"command-{Guid.NewGuid():N}.log");
        var commandLine = string.Join(' ', new[] { program }.Concat(args).Select(Quote)) + $" >{Quote(log)} 2>&1";
        var root = Environment.UserName == "root";
        var start = new ProcessStartInfo(root ? "runuser" : "sh") { WorkingDirectory = directory, UseShellExecute = false };
        if (root)
        {
            foreach (var arg in new[] { "-u", user, "--", "sh" })
            {
                start.ArgumentList.Add(arg);
            }
        }
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(commandLine);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        var output = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
        File.Delete(log);
        return (process.ExitCode, output);
    }

    /// <summary>Gives a directory tree to the server's user (only possible, and only needed, as root).</summary>
    public static async Task OwnAsync(string user, string directory)
    {
        if (Environment.UserName == "root")
        {
            using var chown = Process.Start("chown", ["-R", $"{user}:", directory])!;
            await chown.WaitForExitAsync();
        }
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
