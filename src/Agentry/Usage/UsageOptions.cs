using System.ComponentModel.DataAnnotations;

namespace Agentry.Usage;

/// <summary>How the usage ledger writes its records. Section <c>Agentry:Usage</c>.</summary>
public sealed class UsageOptions
{
    public const string SectionName = "Agentry:Usage";

    /// <summary>Records are written in batches: at least this often while calls finish…</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00", ErrorMessage = "Agentry:Usage:FlushInterval must be between 00:00:00.001 and 01:00:00.")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>…and at once when this many wait.</summary>
    [Range(1, 10_000, ErrorMessage = "Agentry:Usage:BatchSize must be between 1 and 10000.")]
    public int BatchSize { get; set; } = 500;

    /// <summary>Records waiting to be written, at most; a call that finishes when the queue is full waits for room (never drops its record).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Agentry:Usage:QueueCapacity must be between 1 and 1000000.")]
    public int QueueCapacity { get; set; } = 10_000;
}
