using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Operations;

/// <summary>One run of an operator's verb as the shipped program, with the settings a node of the test uses.</summary>
public sealed record Verb(int ExitCode, IReadOnlyList<string> Stdout, IReadOnlyList<string> Stderr)
{
    /// <summary>The lines the verb itself printed (logs are JSON lines).</summary>
    public IReadOnlyList<string> Said => [.. Stdout.Where(l => l.StartsWith("agentry:", StringComparison.Ordinal))];

    public string Everything => string.Join('\n', Stdout.Concat(Stderr));

    public static Task<Verb> RunAsync(IReadOnlyDictionary<string, string?> settings, params string[] args) =>
        RunAsync(settings, new Dictionary<string, string>(), args);

    public static async Task<Verb> RunAsync(IReadOnlyDictionary<string, string?> settings, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var variables = settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value ?? "");
        foreach (var (key, value) in environment)
        {
            variables[key] = value;
        }
        await using var process = AgentryProcess.Start(TempFiles.Directory(), variables, args);
        var exitCode = await process.WaitForExitAsync(TimeSpan.FromSeconds(180));
        return new Verb(exitCode, [.. process.Stdout], [.. process.Stderr]);
    }

    /// <summary>Asserts the verb ended with <paramref name="expected"/>, showing what it printed when not.</summary>
    public Verb Exited(int expected)
    {
        Assert.True(ExitCode == expected, $"exit code {ExitCode}, expected {expected}:\n{Everything}");
        return this;
    }

    /// <summary>A refusal: exit code 2 and one line on stderr, no stack trace.</summary>
    public string Refused()
    {
        Exited(2);
        var line = Assert.Single(Stderr, l => l.Length > 0);
        Assert.StartsWith("agentry:", line);
        Assert.DoesNotContain("   at ", Everything);
        return line;
    }
}
