using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Identity;

public sealed record MembershipResponse(Guid WorkspaceId, string WorkspaceSlug, string WorkspaceName, string Role);

/// <summary>The caller: a user (<c>kind</c> "user"), an API key ("apiKey") or a service account ("serviceAccount"); the last two with their scopes and no email.</summary>
public sealed record MeResponse(
    string Kind, Guid Id, string? Email, string DisplayName, bool IsPlatformAdmin, IReadOnlyList<MembershipResponse> Memberships,
    IReadOnlyCollection<string>? Scopes = null);

internal static class MeEndpoints
{
    /// <summary>A deleted or disabled user's token is refused (401) while binding <see cref="Caller"/>, as everywhere.</summary>
    internal static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> GetAsync(Caller caller, AppDbContext db, IFusionCache cache, CancellationToken ct)
    {
        if (caller.IsWorkspaceBound)
        {
            return await WorkspaceBoundAsync(caller, db, cache, ct);
        }
        var id = caller.UserId;
        // Cached with the tags of every workspace the user is in, so renaming one or changing its members
        // drops it; the user's own changes drop it by MeTag.
        var me = await cache.GetOrSetAsync<MeResponse?>(
            MeCacheKey(id),
            async (entry, token) =>
            {
                var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, token);
                if (user is null)
                {
                    return null;
                }
                var memberships = await db.Memberships.AsNoTracking()
                    .Where(m => m.UserId == id)
                    .Join(db.Workspaces, m => m.WorkspaceId, w => w.Id, (m, w) => new MembershipResponse(w.Id, w.Slug, w.Name, m.Role))
                    .ToListAsync(token);
                entry.Tags = [MeTag(id), .. memberships.Select(m => Caller.MembershipTag(m.WorkspaceId))];
                return new MeResponse("user", user.Id, user.Email, user.DisplayName, user.IsPlatformAdmin, memberships);
            },
            options => options.SetDuration(TimeSpan.FromMinutes(5)),
            token: ct);
        return me is null ? Problem.NotFound("The signed-in user no longer exists.") : TypedResults.Ok(me);
    }

    /// <summary>Drops the cached /me of a user (their profile or their memberships changed).</summary>
    public static string MeTag(Guid userId) => $"me:{userId}";

    private static string MeCacheKey(Guid userId) => $"me:{userId}";

    /// <summary>A key's or service account's name and workspace, cached (dropped when the workspace changes).</summary>
    private static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> WorkspaceBoundAsync(
        Caller caller, AppDbContext db, IFusionCache cache, CancellationToken ct)
    {
        var role = ApiKeyScopes.RoleFor(caller.Scopes);
        var (kind, id, names) = caller.KeyId is { } keyId
            ? ("apiKey", keyId, db.ApiKeys.Where(k => k.Id == keyId).Select(k => new { k.Name, k.WorkspaceId }))
            : ("serviceAccount", caller.ServiceAccountId!.Value, db.ServiceAccounts.Where(a => a.Id == caller.ServiceAccountId).Select(a => new { a.Name, a.WorkspaceId }));
        var me = await cache.GetOrSetAsync<MeResponse?>(
            $"me:{kind}:{id}",
            async token =>
            {
                var found = await names.AsNoTracking()
                    .Join(db.Workspaces, n => n.WorkspaceId, w => w.Id, (n, w) => new { n.Name, w.Id, w.Slug, WorkspaceName = w.Name })
                    .FirstOrDefaultAsync(token);
                return found is null
                    ? null
                    : new MeResponse(kind, id, null, found.Name, false, [new MembershipResponse(found.Id, found.Slug, found.WorkspaceName, role)], caller.Scopes);
            },
            options => options.SetDuration(TimeSpan.FromMinutes(5)),
            tags: [Caller.MembershipTag(caller.BoundWorkspaceId!.Value)],
            token: ct);
        return me is null ? Problem.NotFound("The API key or service account no longer exists.") : TypedResults.Ok(me);
    }
}
