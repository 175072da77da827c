using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Usage;

public static class UsageEndpoints
{
    /// <summary>The longest range one report may cover.</summary>
    public const int MaxRangeDays = 366;

    private const int DefaultRangeDays = 30;

    /// <summary><c>GET /api/v1/usage</c>: the workspace's model calls; scope <c>chat</c> like the other model endpoints, viewers read.</summary>
    public static IEndpointRouteBuilder MapUsage(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapWorkspaceResource("/api/v1/usage", "Usage")
            .MapGet("/", ReportAsync).WithName("GetUsage")
            .WithSummary("The workspace's model calls summed per UTC day, optionally per model, principal or agent: tokens, calls, duration")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Viewer);
        return endpoints;
    }

    internal static async Task<Results<Ok<UsageReport>, ProblemHttpResult>> ReportAsync(
        [AsParameters] UsageQuery query, CurrentWorkspace workspace, AppDbContext db, UsageLedger ledger, TimeProvider clock, CancellationToken ct)
    {
        if (query.GroupBy is { } groupBy && !UsageGroupings.All.Contains(groupBy))
        {
            return Problem.Validation("groupBy", $"Unknown groupBy '{groupBy}'. Allowed: {string.Join(", ", UsageGroupings.All)}.");
        }
        var to = query.To?.UtcDateTime ?? clock.UtcNow();
        var from = query.From?.UtcDateTime ?? to.AddDays(-DefaultRangeDays);
        if (from >= to)
        {
            return Problem.Validation("from", "'from' must be before 'to'.");
        }
        if (to - from > TimeSpan.FromDays(MaxRangeDays))
        {
            return Problem.Validation("to", $"The range is {(to - from).TotalDays:0.#} days; one report covers at most {MaxRangeDays}.");
        }
        // This node's own calls are in the report even when their batch was not due yet.
        await ledger.FlushAsync(ct);
        var (firstDay, lastDay) = (DateOnly.FromDateTime(from), DateOnly.FromDateTime(to));
        var groups = await db.UsageRecords.AsNoTracking()
            .Where(r => r.WorkspaceId == workspace.Id && r.Day >= firstDay && r.Day <= lastDay && r.At >= from && r.At < to)
            .GroupBy(r => new { r.Day, r.Model, r.PrincipalKind, r.PrincipalId, r.AgentId })
            .Select(g => new
            {
                g.Key,
                Prompt = g.Sum(r => r.PromptTokens),
                Completion = g.Sum(r => r.CompletionTokens),
                Calls = g.LongCount(),
                Cached = g.LongCount(r => r.Cached),
                Duration = g.Sum(r => r.DurationMs),
            })
            .ToListAsync(ct);
        // Grouped finely in the database and folded here by the dimension asked for: one query for every grouping.
        var rows = groups
            .GroupBy(g => (g.Key.Day, Key: query.GroupBy switch
            {
                UsageGroupings.Model => g.Key.Model,
                UsageGroupings.Principal => g.Key.PrincipalKind is { } kind ? $"{kind}:{g.Key.PrincipalId}" : null,
                UsageGroupings.Agent => g.Key.AgentId?.ToString(),
                _ => null,
            }))
            .Select(g => new UsageRow(g.Key.Day, g.Key.Key, g.Sum(x => x.Prompt), g.Sum(x => x.Completion), g.Sum(x => x.Prompt + x.Completion),
                g.Sum(x => x.Calls), g.Sum(x => x.Cached), g.Sum(x => x.Duration)))
            .OrderBy(r => r.Day).ThenBy(r => r.Key, StringComparer.Ordinal)
            .ToList();
        var totals = new UsageTotals(rows.Sum(r => r.PromptTokens), rows.Sum(r => r.CompletionTokens), rows.Sum(r => r.TotalTokens),
            rows.Sum(r => r.Calls), rows.Sum(r => r.CachedCalls), rows.Sum(r => r.DurationMs));
        return TypedResults.Ok(new UsageReport(from, to, query.GroupBy, rows, totals));
    }
}
