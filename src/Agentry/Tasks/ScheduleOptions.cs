using System.ComponentModel.DataAnnotations;

namespace Agentry.Tasks;

/// <summary>The schedule runner. Section <c>Agentry:Schedules</c>.</summary>
public sealed class ScheduleOptions
{
    public const string SectionName = "Agentry:Schedules";

    /// <summary>How often a worker node looks for due slots; a slot fires at most this late (plus the queue's own delay).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00", ErrorMessage = "Agentry:Schedules:Interval must be between 00:00:00.010 and 00:01:00.")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A slot later than this (every worker was down) is missed: the missed slots of a schedule collapse into one
    /// task for the latest of them. Slots less late fire one by one, so a restart or a slow scan loses none.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00", ErrorMessage = "Agentry:Schedules:MissedAfter must be between 00:00:01 and 7.00:00:00.")]
    public TimeSpan MissedAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Due schedules one scan takes; the rest wait for the next scan.</summary>
    [Range(1, 10_000, ErrorMessage = "Agentry:Schedules:BatchSize must be between 1 and 10000.")]
    public int BatchSize { get; set; } = 100;
}
