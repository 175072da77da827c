using Agentry.Agents;
using Agentry.Data;
using Agentry.Workspaces;
using Cronos;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tasks;

/// <summary>
/// A cron expression that creates a task for its agent at every slot. <see cref="NextRunAt"/> is the slot
/// due next (null while disabled); nodes claim a slot by moving it on with a conditional update, in the
/// same transaction that submits the slot's task (see <see cref="ScheduleRunner"/>).
/// </summary>
public sealed class Schedule : INamedRow
{
    public const int NameMaxLength = 100;
    public const int CronMaxLength = 120;
    public const int TimeZoneMaxLength = 64;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public required string Name { get; set; }
    public Guid AgentId { get; set; }

    /// <summary>Five fields (minute precision) or six (a leading seconds field).</summary>
    public required string Cron { get; set; }

    /// <summary>The IANA time zone the expression is read in.</summary>
    public required string TimeZone { get; set; }

    /// <summary>The task template: input as JSON, and the task settings (null takes the task defaults).</summary>
    public required string Input { get; set; }
    public int Priority { get; set; }
    public int? MaxAttempts { get; set; }
    public int? TimeoutSeconds { get; set; }

    public bool Enabled { get; set; }

    /// <summary>The slot due next; null while disabled or when the expression has no later slot.</summary>
    public DateTime? NextRunAt { get; set; }

    /// <summary>The slot fired last, and the task it created (null when its submission was refused).</summary>
    public DateTime? LastRunAt { get; set; }
    public Guid? LastTaskId { get; set; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public Guid? CreatedBy { get; init; }
}

/// <summary>A schedule's expression and zone, parsed: computes its slots.</summary>
internal sealed record ScheduleClock(CronExpression Cron, TimeZoneInfo Zone)
{
    /// <summary>Six fields carry seconds; anything else (five fields, <c>@hourly</c>) is standard cron.</summary>
    public static bool TryParseCron(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CronExpression? cron)
    {
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Length;
        return CronExpression.TryParse(text.Trim(), fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard, out cron);
    }

    /// <summary>Only IANA ids, so a schedule means the same on every operating system.</summary>
    public static bool TryFindZone(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TimeZoneInfo? zone) =>
        TimeZoneInfo.TryFindSystemTimeZoneById(id, out zone) && zone.HasIanaId;

    public static ScheduleClock Of(Schedule s)
    {
        if (!TryParseCron(s.Cron, out var cron) || !TryFindZone(s.TimeZone, out var zone))
        {
            throw new InvalidOperationException($"Schedule {s.Id} has an expression or time zone this installation cannot read.");
        }
        return new ScheduleClock(cron, zone);
    }

    /// <summary>The first slot after <paramref name="after"/>.</summary>
    public DateTime? Next(DateTime after) => Cron.GetNextOccurrence(after, Zone);

    /// <summary>The latest slot at or before <paramref name="now"/>.</summary>
    public DateTime? Latest(DateTime now) => Cron.GetPreviousOccurrence(now, Zone, inclusive: true);
}

internal sealed class ScheduleConfiguration : IEntityTypeConfiguration<Schedule>
{
    public void Configure(EntityTypeBuilder<Schedule> schedule)
    {
        schedule.ToTable("schedules");
        schedule.HasKey(s => s.Id);
        schedule.Property(s => s.Id).ValueGeneratedNever();
        schedule.Property(s => s.Name).HasMaxLength(Schedule.NameMaxLength);
        schedule.Property(s => s.Cron).HasMaxLength(Schedule.CronMaxLength);
        schedule.Property(s => s.TimeZone).HasMaxLength(Schedule.TimeZoneMaxLength);
        schedule.HasOne<Workspace>().WithMany().HasForeignKey(s => s.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        schedule.HasOne<Agent>().WithMany().HasForeignKey(s => s.AgentId).OnDelete(DeleteBehavior.Cascade);
        schedule.HasIndex(s => new { s.WorkspaceId, s.Name }).IsUnique();
        schedule.HasIndex(s => new { s.WorkspaceId, s.Id });
        // The runner's scan for due slots; disabled schedules have none.
        schedule.HasIndex(s => s.NextRunAt).HasFilter("\"NextRunAt\" IS NOT NULL");
    }
}
