using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Agentry.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>What a valid key grants, as cached on every node (never the secret).</summary>
internal sealed record ApiKeyGrant(Guid Id, Guid WorkspaceId, string Prefix, string[] Scopes, DateTime? ExpiresAt, DateTime? RevokedAt, DateTime? LastUsedAt);

/// <summary>
/// Keys by hash, cached. Revoking a key removes its entry, and the cache backplane makes every node
/// drop its copy, so a revoked key is refused everywhere within a second.
/// </summary>
internal sealed class ApiKeyGrants(IFusionCache cache, TimeProvider clock)
{
    private static readonly TimeSpan Duration = TimeSpan.FromMinutes(10);

    /// <summary>Last-used times are written at most once a minute per key and node.</summary>
    private static readonly TimeSpan TouchInterval = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<Guid, DateTime> _touched = new();

    public ValueTask<ApiKeyGrant?> FindAsync(byte[] hash, IServiceProvider services, CancellationToken ct) =>
        cache.GetOrSetAsync<ApiKeyGrant?>(
            Key(hash),
            token => services.GetRequiredService<AppDbContext>().ApiKeys.AsNoTracking().Where(k => k.Hash == hash)
                .Select(k => new ApiKeyGrant(k.Id, k.WorkspaceId, k.Prefix, k.Scopes.Split(' ', StringSplitOptions.None), k.ExpiresAt, k.RevokedAt, k.LastUsedAt))
                .FirstOrDefaultAsync(token),
            Duration,
            ct);

    /// <summary>The principal of a well-formed, known, unrevoked and unexpired key; otherwise the reason it is refused.</summary>
    public async ValueTask<AuthenticateResult> AuthenticateAsync(HttpContext context, string credential, string scheme)
    {
        if (!ApiKeySecret.IsWellFormed(credential))
        {
            return AuthenticateResult.Fail("The API key is malformed.");
        }
        var services = context.RequestServices;
        var grant = await FindAsync(ApiKeySecret.Hash(credential), services, context.RequestAborted);
        if (grant is null || grant.RevokedAt is not null)
        {
            return AuthenticateResult.Fail("The API key is unknown or revoked.");
        }
        if (grant.ExpiresAt <= clock.UtcNow())
        {
            return AuthenticateResult.Fail("The API key has expired.");
        }
        await TouchAsync(grant, services, context.RequestAborted);

        var identity = new ClaimsIdentity(BearerAuthentication.ApiKeyScheme, Claims.Name, Claims.Role);
        identity.AddClaim(new Claim(AgentryClaims.KeyId, grant.Id.ToString()));
        identity.AddClaim(new Claim(AgentryClaims.WorkspaceId, grant.WorkspaceId.ToString()));
        identity.AddClaim(new Claim(Claims.Name, grant.Prefix));
        foreach (var scope in grant.Scopes)
        {
            identity.AddClaim(new Claim(AgentryClaims.Scope, scope));
        }
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), scheme));
    }

    public ValueTask ForgetAsync(byte[] hash, CancellationToken ct) => cache.RemoveAsync(Key(hash), token: ct);

    private async Task TouchAsync(ApiKeyGrant grant, IServiceProvider services, CancellationToken ct)
    {
        var now = clock.UtcNow();
        if (grant.LastUsedAt > now - TouchInterval)
        {
            return;
        }
        var touched = _touched.GetOrAdd(grant.Id, DateTime.MinValue);
        if (touched > now - TouchInterval || !_touched.TryUpdate(grant.Id, now, touched))
        {
            return;
        }
        await services.GetRequiredService<AppDbContext>().ApiKeys.Where(k => k.Id == grant.Id).ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), ct);
    }

    private static string Key(byte[] hash) => $"apikey:{Convert.ToHexString(hash)}";
}

/// <summary><c>Authorization: Bearer agt_…</c>: a workspace-bound principal carrying the key's scopes.</summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyGrants grants)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private const string BearerPrefix = "Bearer ";

    /// <summary>The credential after <c>Bearer </c>, or empty.</summary>
    public static ReadOnlySpan<char> ReadCredential(HttpRequest request)
    {
        var header = request.Headers.Authorization;
        return header.Count == 1 && header[0] is { } value && value.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase)
            ? value.AsSpan(BearerPrefix.Length).Trim()
            : default;
    }

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var credential = ReadCredential(Request);
        return credential.IsEmpty ? AuthenticateResult.NoResult() : await grants.AuthenticateAsync(Context, credential.ToString(), Scheme.Name);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        return Task.CompletedTask;
    }
}
