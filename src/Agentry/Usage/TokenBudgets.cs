using Agentry.Data;
using Agentry.Models;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Usage;

/// <summary>A daily token budget is spent: model calls are refused (429) until it resets at the next UTC midnight.</summary>
public sealed class TokenBudgetExhaustedException(string budget, long limit, long spent, DateTime resetsAt)
    : Exception($"The {(budget == TokenBudgets.WorkspaceScope ? "workspace's" : "API key's")} daily token budget of {limit} is spent " +
        $"({spent} tokens used today, UTC); it resets at {resetsAt:yyyy-MM-ddTHH:mm:ssZ}.")
{
    public const string Code = "token_budget_exhausted";

    /// <summary><c>workspace</c> or <c>api_key</c>.</summary>
    public string Budget { get; } = budget;
    public long Limit { get; } = limit;
    public long Spent { get; } = spent;
    public DateTime ResetsAt { get; } = resetsAt;
}

/// <summary>
/// Daily token budgets, per workspace and per API key, checked before every model call. Both the limits and the day's
/// sums are cached (a sum is dropped whenever the ledger writes records it counts), and this node's records not yet
/// written are added, so the check costs cache lookups and is exact on one node; calls on other nodes count once their
/// batch is written (within <c>Agentry:Usage:FlushInterval</c>). A call that starts under the budget is not cut short.
/// </summary>
internal sealed class TokenBudgets(IServiceScopeFactory scopes, IFusionCache cache, UsageLedger ledger, TimeProvider clock)
{
    public const string WorkspaceScope = "workspace";
    public const string ApiKeyScope = "api_key";

    /// <summary>Where the ledger and the check meet: one budget scope on one day.</summary>
    public static string ScopeKey(string scope, Guid id, DateOnly day) => $"{scope}:{id}:{day:yyyy-MM-dd}";

    public static string SpentCacheKey(string scopeKey) => $"usage-spent:{scopeKey}";

    public static string LimitCacheKey(string scope, Guid id) => $"token-budget:{scope}:{id}";

    /// <summary>Throws <see cref="TokenBudgetExhaustedException"/> when a budget that applies to the caller is spent.</summary>
    public async Task CheckAsync(ModelCaller caller, CancellationToken ct)
    {
        var now = clock.UtcNow();
        var day = DateOnly.FromDateTime(now);
        await CheckAsync(WorkspaceScope, caller.WorkspaceId, day, ct);
        if (caller.KeyId is { } key)
        {
            await CheckAsync(ApiKeyScope, key, day, ct);
        }
    }

    private async Task CheckAsync(string scope, Guid id, DateOnly day, CancellationToken ct)
    {
        var limit = await cache.GetOrSetAsync<long?>(
            LimitCacheKey(scope, id),
            token => LimitAsync(scope, id, token),
            options => options.SetDuration(TimeSpan.FromMinutes(5)),
            token: ct);
        if (limit is not { } max)
        {
            return;
        }
        var key = ScopeKey(scope, id, day);
        var written = await cache.GetOrSetAsync<long>(
            SpentCacheKey(key),
            token => SpentAsync(scope, id, day, token),
            // Dropped by the ledger when it writes; the duration only bounds how stale another node's writes can leave it.
            options => options.SetDuration(TimeSpan.FromSeconds(30)).SetFailSafe(false),
            token: ct);
        var spent = written + ledger.PendingTokens(key);
        if (spent >= max)
        {
            throw new TokenBudgetExhaustedException(scope, max, spent, day.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        }
    }

    // The database is reached inside cache factories only: most checks find everything cached and rent no context.
    private async Task<long?> LimitAsync(string scope, Guid id, CancellationToken ct)
    {
        await using var services = scopes.CreateAsyncScope();
        var db = services.ServiceProvider.GetRequiredService<AppDbContext>();
        return scope == WorkspaceScope
            ? await db.Workspaces.AsNoTracking().Where(w => w.Id == id).Select(w => w.DailyTokenBudget).FirstOrDefaultAsync(ct)
            : await db.ApiKeys.AsNoTracking().Where(k => k.Id == id).Select(k => k.DailyTokenBudget).FirstOrDefaultAsync(ct);
    }

    private async Task<long> SpentAsync(string scope, Guid id, DateOnly day, CancellationToken ct)
    {
        await using var services = scopes.CreateAsyncScope();
        var records = services.ServiceProvider.GetRequiredService<AppDbContext>().UsageRecords.AsNoTracking().Where(r => r.Day == day);
        records = scope == WorkspaceScope
            ? records.Where(r => r.WorkspaceId == id)
            : records.Where(r => r.PrincipalKind == UsagePrincipals.ApiKey && r.PrincipalId == id);
        return await records.SumAsync(r => r.PromptTokens + r.CompletionTokens, ct);
    }
}
