using System.ComponentModel.DataAnnotations;
using System.Text.Json;

namespace Agentry.Tasks;

/// <summary>The task template a create and an update both take; on an update, a field left out (or null) keeps its value.</summary>
public abstract record ScheduleTemplateInput
{
    /// <summary>Five fields (<c>0 9 * * 1-5</c>) or six with a leading seconds field (<c>*/10 * * * * *</c>).</summary>
    [StringLength(Schedule.CronMaxLength, MinimumLength = 1)]
    public string? Cron { get; init; }

    /// <summary>An IANA time zone id the expression is read in; default <c>UTC</c>.</summary>
    [StringLength(Schedule.TimeZoneMaxLength, MinimumLength = 1)]
    public string? TimeZone { get; init; }

    /// <summary>The input of every task the schedule creates; any JSON value, default <c>{}</c>.</summary>
    public JsonElement? Input { get; init; }

    [Range(0, 9)]
    public int? Priority { get; init; }

    [Range(1, 100)]
    public int? MaxAttempts { get; init; }

    [Range(1, 86_400)]
    public int? TimeoutSeconds { get; init; }

    /// <summary>Default true; a disabled schedule creates no tasks.</summary>
    public bool? Enabled { get; init; }
}

public sealed record CreateScheduleRequest : ScheduleTemplateInput
{
    [Required, StringLength(Schedule.NameMaxLength, MinimumLength = 1)]
    public string Name { get; init; } = "";

    [Required]
    public Guid? AgentId { get; init; }
}

public sealed record UpdateScheduleRequest : ScheduleTemplateInput
{
    [StringLength(Schedule.NameMaxLength, MinimumLength = 1)]
    public string? Name { get; init; }

    public Guid? AgentId { get; init; }
}

/// <summary>A schedule; <see cref="NextRunAt"/> is null while it is disabled.</summary>
public sealed record ScheduleResponse(
    Guid Id, string Name, Guid AgentId, string Cron, string TimeZone, JsonElement Input, int Priority, int? MaxAttempts, int? TimeoutSeconds,
    bool Enabled, DateTime? NextRunAt, DateTime? LastRunAt, Guid? LastTaskId, DateTime CreatedAt, DateTime UpdatedAt);

internal static class ScheduleContracts
{
    public const string DefaultTimeZone = "UTC";

    public static ScheduleResponse ToResponse(this Schedule s) => new(
        s.Id, s.Name, s.AgentId, s.Cron, s.TimeZone, JsonSerializer.Deserialize<JsonElement>(s.Input), s.Priority, s.MaxAttempts,
        s.TimeoutSeconds, s.Enabled, s.NextRunAt, s.LastRunAt, s.LastTaskId, s.CreatedAt, s.UpdatedAt);

    /// <summary>The task one slot creates: the template, due at its slot.</summary>
    public static SubmitTaskRequest ToTask(this Schedule s, DateTime slot) => new()
    {
        AgentId = s.AgentId,
        Input = JsonSerializer.Deserialize<JsonElement>(s.Input),
        Priority = s.Priority,
        MaxAttempts = s.MaxAttempts,
        TimeoutSeconds = s.TimeoutSeconds,
        RunAt = slot,
    };

    /// <summary>Names one slot of one schedule, so a slot can create at most one task, whoever fires it and however often.</summary>
    public static string IdempotencyKey(Guid scheduleId, DateTime slot) =>
        $"schedule:{scheduleId}:{slot.ToString("o", System.Globalization.CultureInfo.InvariantCulture)}";
}
