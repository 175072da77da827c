using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Identity;

/// <summary>User accounts, managed by platform administrators.</summary>
internal static class UserEndpoints
{
    private static readonly string[] Sorts = ["-createdAt", "createdAt", "email"];

    public static void MapUsers(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/users").WithTags("Users").RequireSignedIn().RequirePlatformAdmin()
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapPost("/", CreateAsync).WithName("CreateUser").WithSummary("Create a user (platform administrators)")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/", ListAsync).WithName("ListUsers").WithSummary("List users, a page at a time (platform administrators)")
            .ProducesValidationProblem();
        group.MapGet("/{id:guid}", GetAsync).WithName("GetUser").WithSummary("Get a user (platform administrators)")
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateUser").WithSummary("Rename, reset the password of, disable or promote a user (platform administrators)")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteUser")
            .WithSummary("Delete a user and their memberships; their tokens stop working on every node at once (platform administrators)")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
    }

    internal static async Task<Results<Created<UserResponse>, ProblemHttpResult>> CreateAsync(
        CreateUserRequest request, AppDbContext db, IPasswordHasher<User> hasher, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var user = new User
        {
            Id = Ids.New(),
            Email = request.Email.Trim(),
            NormalizedEmail = User.Normalize(request.Email),
            DisplayName = request.DisplayName.Trim(),
            IsPlatformAdmin = request.IsPlatformAdmin,
            CreatedAt = clock.UtcNow(),
        };
        user.PasswordHash = hasher.HashPassword(user, request.Password);
        db.Users.Add(user);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return Problem.Conflict("email_taken", $"A user with email '{request.Email}' already exists.");
        }
        await audit.RecordAsync(AuditActions.UserCreated, AuditOutcomes.Success, target: AuditTargets.User(user.Id),
            detail: new { email = user.Email, isPlatformAdmin = user.IsPlatformAdmin });
        return TypedResults.Created($"/api/v1/users/{user.Id}", user.ToResponse());
    }

    internal static async Task<Results<Ok<Page<UserResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Sorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var query = db.Users.AsNoTracking();
        query = (sort, after) switch
        {
            ("-createdAt", null) => query.OrderByDescending(u => u.Id),
            ("-createdAt", { } c) => query.Where(u => u.Id.CompareTo(c.Id) < 0).OrderByDescending(u => u.Id),
            ("createdAt", null) => query.OrderBy(u => u.Id),
            ("createdAt", { } c) => query.Where(u => u.Id.CompareTo(c.Id) > 0).OrderBy(u => u.Id),
            (_, null) => query.OrderBy(u => u.NormalizedEmail),
            (_, { } c) => query.Where(u => u.NormalizedEmail.CompareTo(c.Value) > 0).OrderBy(u => u.NormalizedEmail),
        };
        var rows = await query.Take(page.Size + 1).ToListAsync(ct);
        return TypedResults.Ok(rows.ToPage(page.Size, last => new Cursor(sort, sort == "email" ? last.NormalizedEmail : null, last.Id), u => u.ToResponse()));
    }

    internal static async Task<Results<Ok<UserResponse>, ProblemHttpResult>> GetAsync(Guid id, AppDbContext db, CancellationToken ct)
    {
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, ct);
        return user is null ? NotFound(id) : TypedResults.Ok(user.ToResponse());
    }

    internal static async Task<Results<Ok<UserResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateUserRequest request, AppDbContext db, IPasswordHasher<User> hasher, IFusionCache cache, AuditTrail audit,
        CancellationToken ct)
    {
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return NotFound(id);
        }
        var changes = Changes(user, request);
        user.DisplayName = request.DisplayName?.Trim() ?? user.DisplayName;
        user.IsDisabled = request.IsDisabled ?? user.IsDisabled;
        user.IsPlatformAdmin = request.IsPlatformAdmin ?? user.IsPlatformAdmin;
        if (request.Password is not null)
        {
            user.PasswordHash = hasher.HashPassword(user, request.Password);
            user.AccessFailedCount = 0;
            user.LockoutEnd = null;
        }
        await db.SaveChangesAsync(ct);
        // Every node drops its copy, so a disabled user's tokens stop working everywhere at once.
        await cache.RemoveAsync(Caller.UserCacheKey(id), token: ct);
        await cache.RemoveByTagAsync(MeEndpoints.MeTag(id), token: ct);
        if (changes.Count > 0)
        {
            var action = changes.TryGetValue("isDisabled", out var disabled) && disabled is true ? AuditActions.UserDisabled : AuditActions.UserUpdated;
            await audit.RecordAsync(action, AuditOutcomes.Success, target: AuditTargets.User(id), detail: changes);
        }
        return TypedResults.Ok(user.ToResponse());
    }

    /// <summary>Refused for oneself and for the only owner of a workspace (which would be left without one).</summary>
    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, Caller caller, AppDbContext db, IFusionCache cache, AuditTrail audit, CancellationToken ct)
    {
        if (id == caller.UserId)
        {
            return Problem.Conflict("cannot_delete_self", "Administrators cannot delete their own account.");
        }
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return NotFound(id);
        }
        var memberships = await db.Memberships.AsNoTracking().Where(m => m.UserId == id).ToListAsync(ct);
        var owned = memberships.Where(m => m.Role == Roles.Owner).Select(m => m.WorkspaceId).ToList();
        var soleOwner = await db.Memberships.AsNoTracking()
            .Where(m => owned.Contains(m.WorkspaceId) && m.Role == Roles.Owner)
            .GroupBy(m => m.WorkspaceId)
            .Where(g => g.Count() == 1)
            .Select(g => (Guid?)g.Key)
            .FirstOrDefaultAsync(ct);
        if (soleOwner is { } workspace)
        {
            return Problem.Conflict("last_owner", $"User {id} is the only owner of workspace {workspace}; make someone else an owner first.");
        }
        db.Users.Remove(user);
        await db.SaveChangesAsync(ct);
        await cache.RemoveAsync(Caller.UserCacheKey(id), token: ct);
        await cache.RemoveByTagAsync(MeEndpoints.MeTag(id), token: ct);
        foreach (var membership in memberships)
        {
            await cache.RemoveByTagAsync(Caller.MembershipTag(membership.WorkspaceId), token: ct);
        }
        await audit.RecordAsync(AuditActions.UserDeleted, AuditOutcomes.Success, target: AuditTargets.User(id), detail: new { email = user.Email });
        return TypedResults.NoContent();
    }

    /// <summary>What an update changes, for the audit trail: new values, except that a password is only said to be reset.</summary>
    private static Dictionary<string, object> Changes(User user, UpdateUserRequest request)
    {
        var changes = new Dictionary<string, object>();
        if (request.DisplayName?.Trim() is { } name && name != user.DisplayName)
        {
            changes["displayName"] = name;
        }
        if (request.IsDisabled is { } disabled && disabled != user.IsDisabled)
        {
            changes["isDisabled"] = disabled;
        }
        if (request.IsPlatformAdmin is { } admin && admin != user.IsPlatformAdmin)
        {
            changes["isPlatformAdmin"] = admin;
        }
        if (request.Password is not null)
        {
            changes["passwordReset"] = true;
        }
        return changes;
    }

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"User {id} was not found.");
}
