using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Identity;

public sealed record MembershipResponse(Guid WorkspaceId, string WorkspaceSlug, string WorkspaceName, string Role);

/// <summary>The caller: a user (<c>kind</c> "user") or an API key ("apiKey", with its scopes and no email).</summary>
public sealed record MeResponse(
    string Kind, Guid Id, string? Email, string DisplayName, bool IsPlatformAdmin, IReadOnlyList<MembershipResponse> Memberships,
    IReadOnlyCollection<string>? Scopes = null);

internal static class MeEndpoints
{
    /// <summary>A deleted or disabled user's token is refused (401) while binding <see cref="Caller"/>, as everywhere.</summary>
    internal static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> GetAsync(Caller caller, AppDbContext db, CancellationToken ct)
    {
        if (caller.KeyId is { } keyId)
        {
            return await KeyAsync(caller, keyId, db, ct);
        }
        var id = caller.UserId;
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Problem.NotFound("The signed-in user no longer exists.");
        }
        var memberships = await db.Memberships.AsNoTracking()
            .Where(m => m.UserId == id)
            .Join(db.Workspaces, m => m.WorkspaceId, w => w.Id, (m, w) => new MembershipResponse(w.Id, w.Slug, w.Name, m.Role))
            .ToListAsync(ct);
        return TypedResults.Ok(new MeResponse("user", user.Id, user.Email, user.DisplayName, user.IsPlatformAdmin, memberships));
    }

    private static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> KeyAsync(Caller caller, Guid keyId, AppDbContext db, CancellationToken ct)
    {
        var role = ApiKeyScopes.RoleFor(caller.Scopes);
        var key = await db.ApiKeys.AsNoTracking().Where(k => k.Id == keyId)
            .Join(db.Workspaces, k => k.WorkspaceId, w => w.Id, (k, w) => new { k.Name, Workspace = new MembershipResponse(w.Id, w.Slug, w.Name, role) })
            .FirstOrDefaultAsync(ct);
        return key is null
            ? Problem.NotFound("The API key no longer exists.")
            : TypedResults.Ok(new MeResponse("apiKey", keyId, null, key.Name, false, [key.Workspace], caller.Scopes));
    }
}
