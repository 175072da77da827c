using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Identity;

/// <summary>Who belongs to a workspace, with which role. Workspace admins manage members; only owners make owners.</summary>
internal static class MemberEndpoints
{
    private static readonly string[] Sorts = ["email", "-email"];

    public static void MapMembers(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/workspaces/{workspaceId:guid}/members").WithTags("Members").RequireSignedIn()
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Viewer)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapGet("/", ListAsync).WithName("ListMembers").WithSummary("List a workspace's members, a page at a time");
        group.MapPut("/{userId:guid}", SetAsync).WithName("SetMember").WithSummary("Add a member or change their role (workspace admins)")
            .RequireWorkspaceRole(Roles.Admin)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapDelete("/{userId:guid}", RemoveAsync).WithName("RemoveMember").WithSummary("Remove a member (workspace admins)")
            .RequireWorkspaceRole(Roles.Admin)
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status409Conflict);
    }

    /// <summary>Members by email, a page at a time (keyset on the normalized email, then the user id).</summary>
    internal static async Task<Results<Ok<Page<MemberResponse>>, ProblemHttpResult>> ListAsync(
        Guid workspaceId, [AsParameters] PageRequest page, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Sorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var members = db.Memberships.AsNoTracking()
            .Where(m => m.WorkspaceId == workspaceId)
            .Join(db.Users, m => m.UserId, u => u.Id, (m, u) => new { m, u });
        members = (sort, after) switch
        {
            ("email", null) => members.OrderBy(x => x.u.NormalizedEmail).ThenBy(x => x.u.Id),
            ("email", { } c) => members
                .Where(x => x.u.NormalizedEmail.CompareTo(c.Value) > 0 || (x.u.NormalizedEmail == c.Value && x.u.Id.CompareTo(c.Id) > 0))
                .OrderBy(x => x.u.NormalizedEmail).ThenBy(x => x.u.Id),
            (_, null) => members.OrderByDescending(x => x.u.NormalizedEmail).ThenByDescending(x => x.u.Id),
            (_, { } c) => members
                .Where(x => x.u.NormalizedEmail.CompareTo(c.Value) < 0 || (x.u.NormalizedEmail == c.Value && x.u.Id.CompareTo(c.Id) < 0))
                .OrderByDescending(x => x.u.NormalizedEmail).ThenByDescending(x => x.u.Id),
        };
        var rows = await members.Take(page.Size + 1)
            .Select(x => new { x.u.NormalizedEmail, Member = new MemberResponse(x.u.Id, x.u.Email, x.u.DisplayName, x.m.Role, x.m.CreatedAt) })
            .ToListAsync(ct);
        return TypedResults.Ok(rows.ToPage(page.Size, r => new Cursor(sort, r.NormalizedEmail, r.Member.UserId), r => r.Member));
    }

    internal static async Task<Results<Ok<MemberResponse>, ProblemHttpResult>> SetAsync(
        Guid workspaceId, Guid userId, SetMemberRequest request, Caller caller, AppDbContext db, IFusionCache cache, TimeProvider clock, AuditTrail audit,
        CancellationToken ct)
    {
        if (await RefuseAsync(caller, workspaceId, request.Role, ct) is { } refused)
        {
            return refused;
        }
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null)
        {
            return Problem.NotFound($"User {userId} was not found.");
        }
        var membership = await db.Memberships.FirstOrDefaultAsync(m => m.WorkspaceId == workspaceId && m.UserId == userId, ct);
        var previousRole = membership?.Role;
        if (membership is null)
        {
            membership = db.Memberships.Add(new Membership { WorkspaceId = workspaceId, UserId = userId, Role = request.Role, CreatedAt = clock.UtcNow() }).Entity;
        }
        else
        {
            if (membership.Role == Roles.Owner && request.Role != Roles.Owner && await IsLastOwnerAsync(db, workspaceId, ct))
            {
                return LastOwner();
            }
            membership.Role = request.Role;
        }
        await db.SaveChangesAsync(ct);
        await InvalidateAsync(cache, workspaceId, userId, ct);
        if (previousRole != request.Role)
        {
            await audit.RecordAsync(
                previousRole is null ? AuditActions.MemberAdded : AuditActions.MemberRoleChanged, AuditOutcomes.Success, workspaceId, AuditTargets.User(userId),
                new { from = previousRole, to = request.Role });
        }
        return TypedResults.Ok(new MemberResponse(user.Id, user.Email, user.DisplayName, membership.Role, membership.CreatedAt));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> RemoveAsync(
        Guid workspaceId, Guid userId, Caller caller, AppDbContext db, IFusionCache cache, AuditTrail audit, CancellationToken ct)
    {
        var membership = await db.Memberships.FirstOrDefaultAsync(m => m.WorkspaceId == workspaceId && m.UserId == userId, ct);
        if (await RefuseAsync(caller, workspaceId, membership?.Role ?? Roles.Viewer, ct) is { } refused)
        {
            return refused;
        }
        if (membership is null)
        {
            return Problem.NotFound($"User {userId} is not a member of workspace {workspaceId}.");
        }
        if (membership.Role == Roles.Owner && await IsLastOwnerAsync(db, workspaceId, ct))
        {
            return LastOwner();
        }
        db.Memberships.Remove(membership);
        await db.SaveChangesAsync(ct);
        await InvalidateAsync(cache, workspaceId, userId, ct);
        await audit.RecordAsync(AuditActions.MemberRemoved, AuditOutcomes.Success, workspaceId, AuditTargets.User(userId), new { from = membership.Role });
        return TypedResults.NoContent();
    }

    /// <summary>Managing members takes the admin role; granting or taking away ownership takes an owner.</summary>
    private static async Task<ProblemHttpResult?> RefuseAsync(Caller caller, Guid workspaceId, string targetRole, CancellationToken ct)
    {
        if (caller.IsPlatformAdmin)
        {
            return null;
        }
        var role = await caller.RoleInAsync(workspaceId, ct);
        if (role is null)
        {
            return WorkspaceNotFound(workspaceId);
        }
        var needed = targetRole == Roles.Owner ? Roles.Owner : Roles.Admin;
        return Roles.Satisfies(role, needed) ? null : Problem.Forbidden($"This needs the {needed} role in the workspace; the caller is {role}.");
    }

    private static async Task<bool> IsLastOwnerAsync(AppDbContext db, Guid workspaceId, CancellationToken ct) =>
        await db.Memberships.CountAsync(m => m.WorkspaceId == workspaceId && m.Role == Roles.Owner, ct) <= 1;

    private static async Task InvalidateAsync(IFusionCache cache, Guid workspaceId, Guid userId, CancellationToken ct)
    {
        await cache.RemoveByTagAsync(Caller.MembershipTag(workspaceId), token: ct);
        await cache.RemoveByTagAsync(MeEndpoints.MeTag(userId), token: ct);
        await cache.RemoveByTagAsync(Workspaces.WorkspaceEndpoints.ListTag, token: ct);
    }

    private static ProblemHttpResult LastOwner() => Problem.Conflict("last_owner", "A workspace keeps at least one owner.");

    private static ProblemHttpResult WorkspaceNotFound(Guid id) => Problem.NotFound($"Workspace {id} was not found.");
}
