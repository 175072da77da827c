namespace Agentry.Usage;

/// <summary>The query of <c>GET /api/v1/usage</c>.</summary>
public sealed class UsageQuery
{
    /// <summary>Calls at or after this time (ISO-8601); default 30 days before <see cref="To"/>.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Calls before this time (ISO-8601); default now.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>Besides the day: <c>model</c>, <c>principal</c> or <c>agent</c>.</summary>
    public string? GroupBy { get; init; }
}

/// <summary>A workspace's model calls in a time range, summed per UTC day (and per model, principal or agent when asked).</summary>
public sealed record UsageReport(DateTime From, DateTime To, string? GroupBy, IReadOnlyList<UsageRow> Items, UsageTotals Totals);

/// <summary>
/// One day's calls (of one model, principal or agent). <see cref="Key"/> is the model id, the principal as
/// <c>user:{id}</c>, <c>api_key:{id}</c> or <c>service_account:{id}</c>, or the agent id; null without a grouping, or for
/// calls without a principal or agent.
/// </summary>
public sealed record UsageRow(
    DateOnly Day, string? Key, long PromptTokens, long CompletionTokens, long TotalTokens, long Calls, long CachedCalls, long DurationMs);

public sealed record UsageTotals(long PromptTokens, long CompletionTokens, long TotalTokens, long Calls, long CachedCalls, long DurationMs);

internal static class UsageGroupings
{
    public const string Model = "model";
    public const string Principal = "principal";
    public const string Agent = "agent";

    public static readonly string[] All = [Model, Principal, Agent];
}
