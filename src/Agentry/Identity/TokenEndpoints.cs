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
        HttpContext context, AppDbContext db, IPasswordHasher<User> hasher, IOptions<TokenOptions> options, TimeProvider clock, ILoggerFactory logs)
    {
        var request = context.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenIddict server request is missing.");
        var logger = logs.CreateLogger(typeof(TokenEndpoints));
        if (request.IsPasswordGrantType())
        {
            return await PasswordAsync(request, db, hasher, options.Value, clock, logger, context.RequestAborted);
        }
        if (request.IsRefreshTokenGrantType())
        {
            return await RefreshAsync(context, db, clock);
        }
        return Refuse(Errors.UnsupportedGrantType, "This grant type is not supported.");
    }

    private static async Task<IResult> PasswordAsync(
        OpenIddictRequest request, AppDbContext db, IPasswordHasher<User> hasher, TokenOptions options, TimeProvider clock, ILogger logger, CancellationToken ct)
    {
        var email = request.Username ?? "";
        var user = await db.Users.FirstOrDefaultAsync(u => u.NormalizedEmail == User.Normalize(email), ct);
        var now = clock.UtcNow();
        if (user is null)
        {
            // Same work as a real check, so response time does not tell which emails exist.
            hasher.VerifyHashedPassword(DummyUser, DummyHash, request.Password ?? "");
            IdentityLog.SignInRefused(logger, email, "unknown email");
            return Refuse(Errors.InvalidGrant, WrongCredentials);
        }
        if (user.LockoutEnd > now)
        {
            IdentityLog.SignInRefused(logger, email, "locked out");
            return Refuse(Errors.InvalidGrant, $"Too many failed sign-ins; try again after {user.LockoutEnd:O}.");
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
            IdentityLog.SignInRefused(logger, email, "wrong password");
            return Refuse(Errors.InvalidGrant, WrongCredentials);
        }
        if (user.IsDisabled)
        {
            IdentityLog.SignInRefused(logger, email, "disabled");
            return Refuse(Errors.InvalidGrant, "The account is disabled.");
        }
        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
        {
            user.PasswordHash = hasher.HashPassword(user, request.Password!);
        }
        user.AccessFailedCount = 0;
        user.LockoutEnd = null;
        await db.SaveChangesAsync(ct);
        return SignIn(user, request.GetScopes());
    }

    private static async Task<IResult> RefreshAsync(HttpContext context, AppDbContext db, TimeProvider clock)
    {
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var subject = result.Principal?.GetClaim(Claims.Subject);
        var user = Guid.TryParse(subject, out var id) ? await db.Users.FindAsync([id], context.RequestAborted) : null;
        if (user is null || user.IsDisabled || user.LockoutEnd > clock.UtcNow())
        {
            return Refuse(Errors.InvalidGrant, "The refresh token is no longer valid.");
        }
        return SignIn(user, result.Principal!.GetScopes());
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
