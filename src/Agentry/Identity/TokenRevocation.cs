using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using ZiggyCreatures.Caching.Fusion;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Agentry.Identity;

/// <summary>
/// Whether an issued token is still valid, as OpenIddict's token table says, cached on every node.
/// A revocation overwrites the cached status, and the cache backplane makes every other node drop its
/// copy within milliseconds, so a revoked token stops working everywhere well within a second.
/// </summary>
internal sealed class TokenStatuses(IFusionCache cache)
{
    private static readonly TimeSpan Duration = TimeSpan.FromMinutes(10);

    public async ValueTask<bool> IsValidAsync(string tokenId, IServiceProvider services, CancellationToken ct) =>
        await cache.GetOrSetAsync<string?>(
            Key(tokenId),
            token => services.GetRequiredService<AppDbContext>().Set<OpenIddictEntityFrameworkCoreToken>().AsNoTracking()
                .Where(t => t.Id == tokenId).Select(t => t.Status).FirstOrDefaultAsync(token),
            Duration,
            ct) == Statuses.Valid;

    /// <summary>Every token of an authorization (one sign-in and its refreshes) is revoked.</summary>
    public async Task RevokeChainAsync(IOpenIddictTokenManager tokens, string authorizationId, CancellationToken ct)
    {
        await tokens.RevokeByAuthorizationIdAsync(authorizationId, ct);
        await foreach (var token in tokens.FindByAuthorizationIdAsync(authorizationId, ct))
        {
            if (await tokens.GetIdAsync(token, ct) is { } id)
            {
                await MarkRevokedAsync(id, ct);
            }
        }
    }

    public ValueTask MarkRevokedAsync(string tokenId, CancellationToken ct) =>
        cache.SetAsync<string?>(Key(tokenId), Statuses.Revoked, Duration, ct);

    private static string Key(string tokenId) => $"token:{tokenId}";
}

/// <summary>
/// /connect/revoke (RFC 7009), after OpenIddict has revoked the presented token: the revocation reaches
/// every node's cache, and revoking a refresh token (signing out) revokes its whole chain, access
/// tokens included, as RFC 7009 §2.1 recommends.
/// </summary>
internal sealed class PropagateRevocation(TokenStatuses statuses, IOpenIddictTokenManager tokens, AuditTrail audit) : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
        .UseScopedHandler<PropagateRevocation>()
        .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order + 1_000)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        var principal = context.GenericTokenPrincipal;
        if (principal?.GetTokenId() is not { } tokenId)
        {
            return;
        }
        var ct = context.CancellationToken;
        var chain = principal.HasTokenType(TokenTypeIdentifiers.RefreshToken) && principal.GetAuthorizationId() is not null;
        if (chain)
        {
            await statuses.RevokeChainAsync(tokens, principal.GetAuthorizationId()!, ct);
        }
        await statuses.MarkRevokedAsync(tokenId, ct);
        await audit.RecordAsync(AuditActor.Of(principal), AuditActions.TokenRevoked, AuditOutcomes.Success, target: $"token:{tokenId}",
            detail: new { type = chain ? "refresh_token" : "access_token", chain });
    }
}

/// <summary>
/// A refresh token presented a second time was probably stolen. OpenIddict then refuses it and revokes
/// the tokens of its authorization in the database; this runs just before that, so the access tokens of
/// the chain are refused at once on every node, and the event is logged and audited.
/// </summary>
internal sealed class DetectRefreshTokenReuse(
    TokenStatuses statuses, IOpenIddictTokenManager tokens, AuditTrail audit, ILogger<DetectRefreshTokenReuse> logger)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
        .UseScopedHandler<DetectRefreshTokenReuse>()
        .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 500)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.TokenId is not { } tokenId || context.AuthorizationId is not { } authorizationId
            || context.Principal?.HasTokenType(TokenTypeIdentifiers.RefreshToken) != true)
        {
            return;
        }
        var ct = context.CancellationToken;
        if (await tokens.FindByIdAsync(tokenId, ct) is { } token && await tokens.HasStatusAsync(token, Statuses.Redeemed, ct))
        {
            IdentityLog.RefreshTokenReused(logger, context.Principal.GetClaim(Claims.Subject) ?? "unknown", authorizationId);
            await statuses.RevokeChainAsync(tokens, authorizationId, ct);
            await audit.RecordAsync(AuditActor.Of(context.Principal), AuditActions.TokenReuseDetected, AuditOutcomes.Denied,
                target: $"token:{tokenId}", detail: new { authorizationId });
        }
    }
}
