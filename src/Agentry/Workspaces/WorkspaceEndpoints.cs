using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Usage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Workspaces;

public static class WorkspaceEndpoints
{
    internal const string ListTag = "workspaces:list";

    public static IEndpointRouteBuilder MapWorkspaces(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/workspaces").WithTags("Workspaces").RequireSignedIn()
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status500InternalServerError);

        group.MapPost("/", CreateAsync).WithName("CreateWorkspace").WithSummary("Create a workspace (platform administrators); the creator owns it")
            .RequirePlatformAdmin()
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        group.MapGet("/", ListAsync).WithName("ListWorkspaces").WithSummary("List the caller's workspaces (all, for platform administrators), a page at a time")
            .ProducesValidationProblem();
        group.MapGet("/{id:guid}", GetAsync).WithName("GetWorkspace").WithSummary("Get a workspace")
            .RequireWorkspaceRole(Roles.Viewer, "id")
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateWorkspace").WithSummary("Change a workspace's name, description or daily token budget (workspace admins)")
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Admin, "id")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteWorkspace").WithSummary("Delete a workspace (its owner)")
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Owner, "id")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        return endpoints;
    }

    internal static async Task<Results<Created<WorkspaceResponse>, ProblemHttpResult>> CreateAsync(
        CreateWorkspaceRequest request, Caller caller, AppDbContext db, IFusionCache cache, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var now = clock.UtcNow();
        var workspace = new Workspace
        {
            Id = Ids.New(),
            Name = request.Name.Trim(),
            Slug = request.Slug,
            Description = request.Description,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Workspaces.Add(workspace);
        db.Memberships.Add(new Membership { WorkspaceId = workspace.Id, UserId = caller.UserId, Role = Roles.Owner, CreatedAt = now });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return Problem.Conflict("slug_taken", $"A workspace with slug '{request.Slug}' already exists.");
        }
        await cache.RemoveByTagAsync(MeEndpoints.MeTag(caller.UserId), token: ct);
        // A name looked up before the workspace existed was remembered as unknown.
        await cache.RemoveAsync(CurrentWorkspace.NamedCacheKey(workspace.Slug), token: ct);
        await cache.RemoveByTagAsync(ListTag, token: ct);
        await audit.RecordAsync(AuditActions.WorkspaceCreated, AuditOutcomes.Success, workspace.Id, AuditTargets.Workspace(workspace.Id),
            new { slug = workspace.Slug, name = workspace.Name });
        return TypedResults.Created($"/api/v1/workspaces/{workspace.Id}", workspace.ToResponse());
    }

    internal static async Task<Results<Ok<Page<WorkspaceResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, Caller caller, AppDbContext db, IFusionCache cache, CancellationToken ct)
    {
        if (page.Resolve(Paging.NamedRowSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var scope = caller.IsPlatformAdmin ? "all" : caller.BoundWorkspaceId is { } only ? $"key:{only}" : caller.UserId.ToString();
        var result = await cache.GetOrSetAsync(
            $"workspaces:list:{scope}:{sort}:{page.Size}:{page.Cursor}",
            token => Visible(db, caller).NamedRowPageAsync(sort, after, page.Size, w => w.ToResponse(), token),
            tags: [ListTag],
            token: ct);
        return TypedResults.Ok(result);
    }

    internal static async Task<Results<Ok<WorkspaceResponse>, ProblemHttpResult>> GetAsync(
        Guid id, AppDbContext db, IFusionCache cache, CancellationToken ct)
    {
        var workspace = await cache.GetOrSetAsync(
            CacheKey(id),
            token => db.Workspaces.AsNoTracking().Where(w => w.Id == id).Select(w => w.ToResponse()).FirstOrDefaultAsync(token),
            token: ct);
        return workspace is null ? NotFound(id) : TypedResults.Ok(workspace);
    }

    internal static async Task<Results<Ok<WorkspaceResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateWorkspaceRequest request, AppDbContext db, IFusionCache cache, TimeProvider clock, AuditTrail audit,
        CancellationToken ct)
    {
        var workspace = await db.Workspaces.FirstOrDefaultAsync(w => w.Id == id, ct);
        if (workspace is null)
        {
            return NotFound(id);
        }
        workspace.Name = request.Name?.Trim() ?? workspace.Name;
        workspace.Description = request.Description ?? workspace.Description;
        if (request.DailyTokenBudget is { } budget)
        {
            workspace.DailyTokenBudget = budget == 0 ? null : budget;
        }
        workspace.UpdatedAt = clock.UtcNow();
        await db.SaveChangesAsync(ct);
        await InvalidateAsync(cache, id, ct);
        await audit.RecordAsync(AuditActions.WorkspaceUpdated, AuditOutcomes.Success, id, AuditTargets.Workspace(id),
            new { name = request.Name, descriptionChanged = request.Description is not null, dailyTokenBudget = request.DailyTokenBudget });
        return TypedResults.Ok(workspace.ToResponse());
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, AppDbContext db, IFusionCache cache, AuditTrail audit, CancellationToken ct)
    {
        var deleted = await db.Workspaces.Where(w => w.Id == id).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return NotFound(id);
        }
        await InvalidateAsync(cache, id, ct);
        await audit.RecordAsync(AuditActions.WorkspaceDeleted, AuditOutcomes.Success, id, AuditTargets.Workspace(id));
        return TypedResults.NoContent();
    }

    private static IQueryable<Workspace> Visible(AppDbContext db, Caller caller) => caller.IsPlatformAdmin
        ? db.Workspaces.AsNoTracking()
        : caller.BoundWorkspaceId is { } only
        ? db.Workspaces.AsNoTracking().Where(w => w.Id == only)
        : db.Workspaces.AsNoTracking().Where(w => db.Memberships.Any(m => m.WorkspaceId == w.Id && m.UserId == caller.UserId));

    private static async Task InvalidateAsync(IFusionCache cache, Guid id, CancellationToken ct)
    {
        await cache.RemoveAsync(CacheKey(id), token: ct);
        await cache.RemoveByTagAsync(ListTag, token: ct);
        await cache.RemoveByTagAsync(Caller.MembershipTag(id), token: ct);
        await cache.RemoveAsync(TokenBudgets.LimitCacheKey(TokenBudgets.WorkspaceScope, id), token: ct);
    }

    private static string CacheKey(Guid id) => $"workspace:{id}";

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Workspace {id} was not found.");
}
