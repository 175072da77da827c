using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Identity;

/// <summary>The filters of <c>GET /api/v1/audit</c>; each one left out matches everything.</summary>
public sealed class AuditQuery
{
    public Guid? WorkspaceId { get; init; }

    /// <summary>An action (<c>member.role_changed</c>), or a prefix ending in a dot (<c>signin.</c>).</summary>
    [StringLength(AuditEvent.ActionMaxLength)]
    public string? Action { get; init; }

    /// <summary><c>success</c>, <c>failure</c> or <c>denied</c>.</summary>
    public string? Outcome { get; init; }

    public Guid? ActorUserId { get; init; }

    /// <summary>Events at or after this time (ISO-8601).</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Events before this time (ISO-8601).</summary>
    public DateTimeOffset? To { get; init; }
}

public sealed record AuditEventResponse(
    Guid Id, DateTime At, string Action, string Outcome, Guid? ActorUserId, Guid? ActorKeyId, string? ActorName,
    Guid? WorkspaceId, string? Target, string? Ip, string? UserAgent, JsonElement? Detail);

/// <summary>The audit log, read-only: platform administrators see all of it, workspace admins their workspace's.</summary>
internal static class AuditEndpoints
{
    // Newest first is the only order: an audit trail is read backwards from now.
    private static readonly string[] Sorts = ["-at"];

    public static void MapAudit(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/audit").WithTags("Audit").RequireSignedIn()
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Admin)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapGet("/", ListAsync).WithName("ListAuditEvents")
            .WithSummary("List security events, newest first, a page at a time (platform administrators; workspace admins with their workspaceId)")
            .ProducesValidationProblem();
    }

    internal static async Task<Results<Ok<Page<AuditEventResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] AuditQuery filter, [AsParameters] PageRequest page, Caller caller, AppDbContext db, AuditQueue queue, CancellationToken ct)
    {
        if (await RefuseAsync(caller, filter.WorkspaceId, ct) is { } refused)
        {
            return refused;
        }
        // What this node has queued is written first, so a read sees every event this node recorded.
        await queue.FlushAsync();
        if (page.Resolve(Sorts, out _, out var after) is { } invalid)
        {
            return invalid;
        }
        if (filter.Outcome is { } outcome && !AuditOutcomes.All.Contains(outcome))
        {
            return Problem.Validation("outcome", $"Unknown outcome '{outcome}'. Allowed: {string.Join(", ", AuditOutcomes.All)}.");
        }
        if (filter.From > filter.To)
        {
            return Problem.Validation("from", "'from' is after 'to'.");
        }
        if (after is not null && !DateTime.TryParse(after.Value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _))
        {
            return Problem.BadRequest(ProblemCodes.InvalidCursor, "The cursor is malformed or belongs to another sort order.");
        }
        var rows = await Filter(db.AuditEvents.AsNoTracking(), filter, after)
            .OrderByDescending(e => e.At).ThenByDescending(e => e.Id)
            .Take(page.Size + 1)
            .ToListAsync(ct);
        return TypedResults.Ok(rows.ToPage(page.Size, last => new Cursor(Sorts[0], last.At.ToString("O", CultureInfo.InvariantCulture), last.Id), ToResponse));
    }

    /// <summary>Across workspaces takes a platform administrator; one workspace takes its admin role (another is a 404).</summary>
    private static async Task<ProblemHttpResult?> RefuseAsync(Caller caller, Guid? workspaceId, CancellationToken ct)
    {
        if (caller.IsPlatformAdmin)
        {
            return null;
        }
        if (workspaceId is not { } id)
        {
            return Problem.Validation("workspaceId", "Only platform administrators list events across workspaces; give the id of a workspace you administer.");
        }
        var role = await caller.RoleInAsync(id, ct);
        if (role is null)
        {
            return Problem.NotFound($"Workspace {id} was not found.");
        }
        return Roles.Satisfies(role, Roles.Admin) ? null : Problem.Forbidden($"Reading the audit log needs the admin role in the workspace; the caller is {role}.");
    }

    private static IQueryable<AuditEvent> Filter(IQueryable<AuditEvent> query, AuditQuery filter, Cursor? after)
    {
        if (filter.WorkspaceId is { } workspaceId)
        {
            query = query.Where(e => e.WorkspaceId == workspaceId);
        }
        if (filter.Action is { } action)
        {
            query = action.EndsWith('.') ? query.Where(e => e.Action.StartsWith(action)) : query.Where(e => e.Action == action);
        }
        if (filter.Outcome is { } outcome)
        {
            query = query.Where(e => e.Outcome == outcome);
        }
        if (filter.ActorUserId is { } actor)
        {
            query = query.Where(e => e.ActorUserId == actor);
        }
        if (filter.From is { } from)
        {
            var since = from.UtcDateTime;
            query = query.Where(e => e.At >= since);
        }
        if (filter.To is { } to)
        {
            var until = to.UtcDateTime;
            query = query.Where(e => e.At < until);
        }
        if (after is not null)
        {
            // Keyset on (At, Id), both descending: events in the same microsecond are ordered by id.
            var at = DateTime.Parse(after.Value!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
            query = query.Where(e => e.At < at || (e.At == at && e.Id.CompareTo(after.Id) < 0));
        }
        return query;
    }

    private static AuditEventResponse ToResponse(AuditEvent e) => new(
        e.Id, e.At, e.Action, e.Outcome, e.ActorUserId, e.ActorKeyId, e.ActorName, e.WorkspaceId, e.Target, e.Ip, e.UserAgent,
        e.Detail is null ? null : JsonSerializer.Deserialize<JsonElement>(e.Detail));
}
