using System.Security.Claims;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using ZiggyCreatures.Caching.Fusion;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>
/// The authenticated user behind a request, as handlers need it: who, whether a platform administrator,
/// and their role in a workspace. Bound from the request like any parameter (<c>Caller caller</c>).
/// </summary>
public sealed class Caller
{
    private readonly AppDbContext _db;
    private readonly IFusionCache _cache;

    private Caller(Guid userId, bool isPlatformAdmin, AppDbContext db, IFusionCache cache)
    {
        UserId = userId;
        IsPlatformAdmin = isPlatformAdmin;
        _db = db;
        _cache = cache;
    }

    public Guid UserId { get; }

    public bool IsPlatformAdmin { get; }

    /// <summary>The caller's role in the workspace, or null when they are not a member.</summary>
    public Task<string?> RoleInAsync(Guid workspaceId, CancellationToken ct) =>
        _cache.GetOrSetAsync<string?>(
            MembershipCacheKey(workspaceId, UserId),
            token => _db.Memberships.AsNoTracking()
                .Where(m => m.WorkspaceId == workspaceId && m.UserId == UserId)
                .Select(m => m.Role)
                .FirstOrDefaultAsync(token),
            tags: [MembershipTag(workspaceId)],
            token: ct).AsTask();

    /// <summary>True when the caller may act with <paramref name="required"/> rights in the workspace.</summary>
    public async Task<bool> HasRoleAsync(Guid workspaceId, string required, CancellationToken ct) =>
        IsPlatformAdmin || (await RoleInAsync(workspaceId, ct) is { } role && Roles.Satisfies(role, required));

    public static string MembershipTag(Guid workspaceId) => $"memberships:{workspaceId}";

    public static string UserCacheKey(Guid userId) => $"user:{userId}";

    public static async ValueTask<Caller> BindAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var db = services.GetRequiredService<AppDbContext>();
        var cache = services.GetRequiredService<IFusionCache>();
        var id = Guid.TryParse(context.User.GetClaim(Claims.Subject), out var subject) ? subject : Guid.Empty;
        var user = await cache.GetOrSetAsync<UserFlags?>(
            UserCacheKey(id),
            token => db.Users.AsNoTracking().Where(u => u.Id == id).Select(u => new UserFlags(u.IsPlatformAdmin, u.IsDisabled)).FirstOrDefaultAsync(token),
            options => options.SetDuration(TimeSpan.FromSeconds(30)),
            token: context.RequestAborted);
        if (user is null || user.IsDisabled)
        {
            throw new UnauthorizedAccessException("The account behind this token no longer exists or is disabled.");
        }
        return new Caller(id, user.IsPlatformAdmin, db, cache);
    }

    private static string MembershipCacheKey(Guid workspaceId, Guid userId) => $"membership:{workspaceId}:{userId}";

    private sealed record UserFlags(bool IsPlatformAdmin, bool IsDisabled);
}
