using System.Security.Claims;
using Agentry.Data;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>
/// /connect/token after OpenIddict has checked the client and the request: who the user is and what
/// their tokens say. Errors follow OAuth 2.0 (RFC 6749 §5.2), as clients of a token endpoint expect.
/// </summary>
internal static class TokenEndpoints
{
    private const string WrongCredentials = "The email or password is wrong.";

    internal static async Task<IResult> ExchangeAsync(
        HttpContext context, AppDbContext db, IPasswordHasher<User> hasher, IOptions<TokenOptions> options, TimeProvider clock, AuditTrail audit, ILoggerFactory logs)
    {
        var request = context.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenIddict server request is missing.");
        var logger = logs.CreateLogger(typeof(TokenEndpoints));
        if (request.IsPasswordGrantType())
        {
            return await PasswordAsync(request, db, hasher, options.Value, clock, new SignInAudit(audit, logger, request), context.RequestAborted);
        }
        if (request.IsRefreshTokenGrantType())
        {
            return await RefreshAsync(context, db, clock, audit);
        }
        if (request.IsClientCredentialsGrantType())
        {
            return await ClientCredentialsAsync(request, db, context.RequestAborted);
        }
        return Refuse(Errors.UnsupportedGrantType, "This grant type is not supported.");
    }

    private static async Task<IResult> PasswordAsync(
        OpenIddictRequest request, AppDbContext db, IPasswordHasher<User> hasher, TokenOptions options, TimeProvider clock, SignInAudit audit, CancellationToken ct)
    {
        var email = request.Username ?? "";
        var user = await db.Users.FirstOrDefaultAsync(u => u.NormalizedEmail == User.Normalize(email), ct);
        var now = clock.UtcNow();
        if (user is null)
        {
            // Same work as a real check, so response time does not tell which emails exist.
            hasher.VerifyHashedPassword(DummyUser, DummyHash, request.Password ?? "");
            return await audit.RefusedAsync(email, null, "unknown_email", WrongCredentials);
        }
        if (user.LockoutEnd > now)
        {
            return await audit.RefusedAsync(email, user, "locked_out", $"Too many failed sign-ins; try again after {user.LockoutEnd:O}.");
        }
        var verdict = user.PasswordHash is null
            ? PasswordVerificationResult.Failed
            : hasher.VerifyHashedPassword(user, user.PasswordHash, request.Password ?? "");
        if (verdict == PasswordVerificationResult.Failed)
        {
            if (++user.AccessFailedCount >= options.MaxFailedSignIns)
            {
                user.AccessFailedCount = 0;
                user.LockoutEnd = now + options.LockoutDuration;
            }
            await db.SaveChangesAsync(ct);
            return await audit.RefusedAsync(email, user, user.LockoutEnd > now ? "wrong_password_locked_out" : "wrong_password", WrongCredentials);
        }
        if (user.IsDisabled)
        {
            return await audit.RefusedAsync(email, user, "disabled", "The account is disabled.");
        }
        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
        {
            user.PasswordHash = hasher.HashPassword(user, request.Password!);
        }
        user.AccessFailedCount = 0;
        user.LockoutEnd = null;
        await db.SaveChangesAsync(ct);
        await audit.SucceededAsync(user);
        return SignIn(user, request.GetScopes());
    }

    private static async Task<IResult> RefreshAsync(HttpContext context, AppDbContext db, TimeProvider clock, AuditTrail audit)
    {
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var subject = result.Principal?.GetClaim(Claims.Subject);
        var user = Guid.TryParse(subject, out var id) ? await db.Users.FindAsync([id], context.RequestAborted) : null;
        if (user is null || user.IsDisabled || user.LockoutEnd > clock.UtcNow())
        {
            var reason = user is null ? "unknown_user" : user.IsDisabled ? "disabled" : "locked_out";
            await audit.RecordAsync(user is null ? new AuditActor(null, null, null) : AuditActor.Of(user), AuditActions.TokenRefreshed, AuditOutcomes.Failure,
                target: id == Guid.Empty ? null : AuditTargets.User(id), detail: new { reason });
            return Refuse(Errors.InvalidGrant, "The refresh token is no longer valid.");
        }
        await audit.RecordAsync(AuditActor.Of(user), AuditActions.TokenRefreshed, AuditOutcomes.Success, target: AuditTargets.User(user.Id));
        return SignIn(user, result.Principal!.GetScopes());
    }

    /// <summary>
    /// A service account (OpenIddict has checked its secret): a token bound to its workspace, with the scopes
    /// asked for (all of its scopes when none are), never more than it has.
    /// </summary>
    private static async Task<IResult> ClientCredentialsAsync(OpenIddictRequest request, AppDbContext db, CancellationToken ct)
    {
        var account = await db.ServiceAccounts.AsNoTracking().FirstOrDefaultAsync(a => a.ClientId == request.ClientId && a.DisabledAt == null, ct);
        if (account is null)
        {
            return Refuse(Errors.InvalidClient, "The service account does not exist or was deleted.");
        }
        var granted = account.Scopes.Split(' ');
        var asked = request.GetScopes();
        var scopes = asked.IsEmpty ? granted : granted.Intersect(asked).ToArray();
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, account.ClientId)
            .SetClaim(Claims.Name, account.Name)
            .SetClaim(AgentryClaims.ServiceAccountId, account.Id.ToString())
            .SetClaim(AgentryClaims.WorkspaceId, account.WorkspaceId.ToString());
        identity.SetScopes(scopes);
        identity.SetResources(TokenOptions.Audience);
        identity.SetDestinations(static _ => [Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private static IResult SignIn(User user, IEnumerable<string> scopes)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, user.Id.ToString())
            .SetClaim(Claims.Email, user.Email)
            .SetClaim(Claims.Name, user.DisplayName);
        identity.SetScopes(scopes);
        identity.SetResources(TokenOptions.Audience);
        identity.SetDestinations(static _ => [Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>Sign-in outcomes for the log and the audit trail; the password never reaches either.</summary>
    private sealed class SignInAudit(AuditTrail audit, ILogger logger, OpenIddictRequest request)
    {
        public async Task<IResult> RefusedAsync(string email, User? user, string reason, string description)
        {
            IdentityLog.SignInRefused(logger, email, reason);
            await audit.RecordAsync(new AuditActor(user?.Id, null, user?.Email ?? email), AuditActions.SignInFailed, AuditOutcomes.Failure,
                target: user is null ? null : AuditTargets.User(user.Id), detail: new { reason, clientId = request.ClientId });
            return Refuse(Errors.InvalidGrant, description);
        }

        public Task SucceededAsync(User user) => audit.RecordAsync(AuditActor.Of(user), AuditActions.SignInSucceeded, AuditOutcomes.Success,
            target: AuditTargets.User(user.Id), detail: new { clientId = request.ClientId });
    }

    private static IResult Refuse(string error, string description) => Results.Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

    private static readonly User DummyUser = new() { Email = "", NormalizedEmail = "", DisplayName = "" };
    private static readonly string DummyHash = new PasswordHasher<User>().HashPassword(DummyUser, "not a password");
}
