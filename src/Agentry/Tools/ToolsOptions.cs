using System.ComponentModel.DataAnnotations;

namespace Agentry.Tools;

/// <summary>How MCP server sessions are run and restarted. Section <c>Agentry:Tools</c>.</summary>
public sealed class ToolsOptions
{
    public const string SectionName = "Agentry:Tools";

    /// <summary>How long starting a session (process or connection, initialize, first tool list) may take.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Agentry:Tools:StartTimeout must be between 00:00:01 and 00:10:00.")]
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The wait before the first restart after a crash or failed start; each further failure doubles it (with ±20% jitter).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00", ErrorMessage = "Agentry:Tools:RestartDelay must be between 00:00:00.100 and 00:10:00.")]
    public TimeSpan RestartDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between restarts.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:Tools:MaxRestartDelay must be between 00:00:01 and 01:00:00.")]
    public TimeSpan MaxRestartDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Failures in a row after which a server is <c>failed</c>: no more automatic restarts, the next use tries again.</summary>
    [Range(1, 1_000, ErrorMessage = "Agentry:Tools:MaxRestarts must be between 1 and 1000.")]
    public int MaxRestarts { get; set; } = 10;

    /// <summary>The <c>PATH</c> a stdio server's process gets (it inherits nothing from Agentry's environment).</summary>
    [Required(ErrorMessage = "Agentry:Tools:ChildPath is required.")]
    public string ChildPath { get; set; } = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The directory under which each stdio server gets its own <c>HOME</c> (and default working directory); unset: the temp directory's <c>agentry-mcp</c>.</summary>
    public string? HomeDirectory { get; set; }

    /// <summary>Longer stderr lines of a stdio server are cut to this many characters in the log.</summary>
    [Range(80, 16_000, ErrorMessage = "Agentry:Tools:StderrLineMaxLength must be between 80 and 16000.")]
    public int StderrLineMaxLength { get; set; } = 1_000;

    public string Home => HomeDirectory ?? Path.Combine(Path.GetTempPath(), "agentry-mcp");
}
