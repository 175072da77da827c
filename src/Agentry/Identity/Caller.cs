using System.Security.Claims;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using Microsoft.Extensions.Validation;
using ZiggyCreatures.Caching.Fusion;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>
/// The authenticated principal behind a request, as handlers need it: a user (whether a platform
/// administrator, their role in a workspace) or an API key or service account (bound to one workspace,
/// acting with the role its scopes imply). Bound from the request like any parameter (<c>Caller caller</c>).
/// </summary>
// Bound from the token, not from input: without this the validation filter walks its properties on every request.
#pragma warning disable ASP0029 // SkipValidation is marked experimental in .NET 10; the generator honours it
[SkipValidation]
#pragma warning restore ASP0029
public sealed class Caller
{
    private static readonly string[] NoScopes = [];

    // The request's services, not its DbContext: most requests find all they need in the cache, and renting a
    // pooled context (and resetting it afterwards) is a measurable part of a cached read.
    private readonly IServiceProvider _services;
    private readonly IFusionCache _cache;

    private Caller(Guid userId, bool isPlatformAdmin, IServiceProvider services, IFusionCache cache)
    {
        UserId = userId;
        IsPlatformAdmin = isPlatformAdmin;
        Scopes = NoScopes;
        _services = services;
        _cache = cache;
    }

    private Caller(Guid? keyId, Guid? serviceAccountId, Guid workspaceId, string[] scopes, IServiceProvider services, IFusionCache cache)
    {
        KeyId = keyId;
        ServiceAccountId = serviceAccountId;
        BoundWorkspaceId = workspaceId;
        Scopes = scopes;
        _services = services;
        _cache = cache;
    }

    /// <summary>The signed-in user; <see cref="Guid.Empty"/> for an API key or a service account.</summary>
    public Guid UserId { get; }

    public bool IsPlatformAdmin { get; }

    /// <summary>The API key the request authenticated with, if any.</summary>
    public Guid? KeyId { get; }

    /// <summary>The service account whose client-credentials token the request carries, if any.</summary>
    public Guid? ServiceAccountId { get; }

    /// <summary>Who acts, as recorded on what they create: the user, or else the API key or service account.</summary>
    public Guid? Actor => UserId != Guid.Empty ? UserId : KeyId ?? ServiceAccountId;

    /// <summary>The one workspace an API key or service account may act in.</summary>
    public Guid? BoundWorkspaceId { get; }

    /// <summary>True for API keys and service accounts: one workspace, rights by scope.</summary>
    public bool IsWorkspaceBound => BoundWorkspaceId is not null;

    /// <summary>The scopes of an API key or service account (empty for users, whose role decides).</summary>
    public IReadOnlyCollection<string> Scopes { get; }

    /// <summary>The caller's role in the workspace, or null when they are not a member.</summary>
    public Task<string?> RoleInAsync(Guid workspaceId, CancellationToken ct) => IsWorkspaceBound
        ? Task.FromResult(workspaceId == BoundWorkspaceId ? ApiKeyScopes.RoleFor(Scopes) : null)
        : UserRoleInAsync(workspaceId, ct);

    private Task<string?> UserRoleInAsync(Guid workspaceId, CancellationToken ct) =>
        _cache.GetOrSetAsync<string?>(
            MembershipCacheKey(workspaceId, UserId),
            token => _services.GetRequiredService<AppDbContext>().Memberships.AsNoTracking()
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
        // Access filters and the handler bind the same request's caller once.
        if (context.Items.TryGetValue(typeof(Caller), out var bound) && bound is Caller known)
        {
            return known;
        }
        var caller = await ResolveAsync(context);
        context.Items[typeof(Caller)] = caller;
        return caller;
    }

    private static async ValueTask<Caller> ResolveAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var cache = services.GetRequiredService<IFusionCache>();
        var principal = context.User;
        if (Guid.TryParse(principal.FindFirst(AgentryClaims.WorkspaceId)?.Value, out var workspaceId))
        {
            return new Caller(
                Guid.TryParse(principal.FindFirst(AgentryClaims.KeyId)?.Value, out var keyId) ? keyId : null,
                Guid.TryParse(principal.FindFirst(AgentryClaims.ServiceAccountId)?.Value, out var accountId) ? accountId : null,
                workspaceId, AgentryClaims.ScopesOf(principal), services, cache);
        }
        var id = Guid.TryParse(context.User.GetClaim(Claims.Subject), out var subject) ? subject : Guid.Empty;
        var user = await cache.GetOrSetAsync<UserFlags?>(
            UserCacheKey(id),
            token => services.GetRequiredService<AppDbContext>().Users.AsNoTracking().Where(u => u.Id == id).Select(u => new UserFlags(u.IsPlatformAdmin, u.IsDisabled)).FirstOrDefaultAsync(token),
            options => options.SetDuration(TimeSpan.FromSeconds(30)),
            token: context.RequestAborted);
        if (user is null || user.IsDisabled)
        {
            throw new UnauthorizedAccessException("The account behind this token no longer exists or is disabled.");
        }
        return new Caller(id, user.IsPlatformAdmin, services, cache);
    }

    private static string MembershipCacheKey(Guid workspaceId, Guid userId) => $"membership:{workspaceId}:{userId}";

    private sealed record UserFlags(bool IsPlatformAdmin, bool IsDisabled);
}
