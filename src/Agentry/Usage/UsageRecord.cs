using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Usage;

/// <summary>
/// One model call in the usage ledger: who made it, with which model, how many tokens it took and how long. Written in
/// batches by <see cref="UsageLedger"/>, never changed afterwards.
/// </summary>
public sealed class UsageRecord
{
    public const int ModelMaxLength = 300;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }

    /// <summary>When the call started.</summary>
    public DateTime At { get; init; }

    /// <summary>The UTC day of <see cref="At"/>: what reports group by and daily budgets sum over.</summary>
    public DateOnly Day { get; init; }

    /// <summary>The catalog id (<c>{provider}/{name}</c>).</summary>
    public required string Model { get; init; }

    /// <summary><see cref="UsagePrincipals"/>: a user, an API key or a service account; null for calls on nobody's behalf.</summary>
    public string? PrincipalKind { get; init; }

    public Guid? PrincipalId { get; init; }

    public Guid? AgentId { get; init; }

    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }
    public long DurationMs { get; init; }

    /// <summary>Answered from the response cache: no model ran, so no tokens are counted.</summary>
    public bool Cached { get; init; }

    /// <summary>The provider reported no usage, so the counts are an estimate (UTF-8 bytes / 3).</summary>
    public bool Estimated { get; init; }

    /// <summary>The call failed or was cancelled before it finished; its counts are what was seen so far.</summary>
    public bool Failed { get; init; }

    public long TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>The kinds of principal a usage record names.</summary>
public static class UsagePrincipals
{
    public const string User = "user";
    public const string ApiKey = "api_key";
    public const string ServiceAccount = "service_account";
}

internal sealed class UsageRecordConfiguration : IEntityTypeConfiguration<UsageRecord>
{
    public void Configure(EntityTypeBuilder<UsageRecord> record)
    {
        // No foreign key to the workspace: records are written in batches after the call, and a workspace deleted
        // meanwhile must not make the whole batch fail. Like audit events, they outlive what they name.
        record.ToTable("usage_records");
        record.HasKey(r => r.Id);
        record.Property(r => r.Id).ValueGeneratedNever();
        record.Property(r => r.Model).HasMaxLength(UsageRecord.ModelMaxLength);
        record.Property(r => r.PrincipalKind).HasMaxLength(20);
        record.Ignore(r => r.TotalTokens);
        // Reports read a workspace's range of days; a workspace's budget sums its current day.
        record.HasIndex(r => new { r.WorkspaceId, r.Day });
        // An API key's budget sums its current day.
        record.HasIndex(r => new { r.PrincipalId, r.Day });
    }
}
