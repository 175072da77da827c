using Agentry.Hosting;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>
/// Access tokens of the configured external OpenID Connect issuer: verified by a JwtBearer scheme of
/// their own against the issuer's discovery document and JWKS (fetched and refreshed by JwtBearer's
/// ConfigurationManager), then mapped to an Agentry user (<see cref="ExternalUsers"/>).
/// </summary>
internal static class ExternalAuthentication
{
    public const string Scheme = "External";

    public static AuthenticationBuilder AddExternalIdentity(this AuthenticationBuilder authentication)
    {
        var services = authentication.Services;
        services.AddSingleton<ExternalIssuer>();
        services.AddSingleton<ExternalUsers>();
        services.AddOptions<JwtBearerOptions>(Scheme).Configure<IOptions<ExternalIdentityOptions>>(ConfigureJwt);
        return authentication.AddJwtBearer(Scheme);
    }

    /// <summary>True when the bearer token claims to come from the external issuer (read, not verified: the scheme verifies).</summary>
    public static bool IsExternal(HttpContext context, ReadOnlySpan<char> credential) =>
        context.RequestServices.GetService<ExternalIssuer>() is { } issuer && issuer.Issued(credential);

    private static void ConfigureJwt(JwtBearerOptions jwt, IOptions<ExternalIdentityOptions> options)
    {
        var external = options.Value;
        jwt.Authority = external.Authority?.AbsoluteUri;
        jwt.Audience = external.Audience;
        jwt.RequireHttpsMetadata = external.RequireHttpsMetadata;
        jwt.MapInboundClaims = false;
        jwt.TokenValidationParameters = new TokenValidationParameters
        {
            // Issuer and keys come from the discovery document; the audience and algorithms are ours.
            ValidAudience = external.Audience,
            ValidAlgorithms = external.Algorithms,
            ClockSkew = TimeSpan.FromSeconds(30),
            NameClaimType = Claims.Name,
            RoleClaimType = Claims.Role,
        };
        jwt.Events = new JwtBearerEvents { OnMessageReceived = RequireProviderAsync, OnTokenValidated = MapToUserAsync, OnChallenge = ExplainRefusal };
    }

    /// <summary>
    /// JwtBearer would carry on without the provider's discovery document and refuse the token (401), as if
    /// it were bad; an unreachable provider is an outage (503 + Retry-After), so the client retries instead
    /// of signing in again. Cheap once fetched: the configuration manager caches the document.
    /// </summary>
    private static async Task RequireProviderAsync(MessageReceivedContext context)
    {
        try
        {
            await context.Options.ConfigurationManager!.GetConfigurationAsync(context.HttpContext.RequestAborted);
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or IOException)
        {
            throw new DependencyUnavailableException("The external identity provider cannot be reached; retry shortly.", ex);
        }
    }

    private static async Task MapToUserAsync(TokenValidatedContext context)
    {
        var http = context.HttpContext;
        var users = http.RequestServices.GetRequiredService<ExternalUsers>();
        var match = await users.MapAsync(context.Principal!, http.RequestServices, http.RequestAborted);
        if (match.UserId is { } userId)
        {
            context.Principal = AsAgentryUser(context.Principal!, userId);
        }
        else
        {
            context.Fail(match.Refusal ?? "The token maps to no Agentry user.");
        }
    }

    /// <summary>
    /// Only what Agentry needs, with <c>sub</c> the Agentry user id so <see cref="Caller"/> works
    /// unchanged. Nothing else is copied: a provider could otherwise mint Agentry's own claims (an API
    /// key's workspace, say).
    /// </summary>
    private static ClaimsPrincipal AsAgentryUser(ClaimsPrincipal external, Guid userId)
    {
        var identity = new ClaimsIdentity(Scheme, Claims.Name, Claims.Role);
        identity.AddClaim(new Claim(Claims.Subject, userId.ToString()));
        foreach (var (from, to) in CopiedClaims)
        {
            if (external.FindFirst(from)?.Value is { } value)
            {
                identity.AddClaim(new Claim(to, value));
            }
        }
        return new ClaimsPrincipal(identity);
    }

    private static readonly (string From, string To)[] CopiedClaims =
    [
        (Claims.Subject, AgentryClaims.ExternalSubject),
        (Claims.Issuer, Claims.Issuer),
        (Claims.Email, Claims.Email),
        (Claims.Name, Claims.Name),
    ];

    /// <summary>A refusal by the user mapping says why, like the token checks do (RFC 6750 error_description).</summary>
    private static Task ExplainRefusal(JwtBearerChallengeContext context)
    {
        // Only the mapping's own refusals (context.Fail): other failures may carry internals, such as why the metadata fetch failed.
        if (context.AuthenticateFailure is AuthenticationFailureException failure && string.IsNullOrEmpty(context.ErrorDescription))
        {
            context.Error = "invalid_token";
            context.ErrorDescription = failure.Message;
        }
        return Task.CompletedTask;
    }
}

/// <summary>The configured external issuer, compared with a token's unverified <c>iss</c> to pick the scheme.</summary>
internal sealed class ExternalIssuer(IOptions<ExternalIdentityOptions> options)
{
    private static readonly JsonWebTokenHandler Reader = new();

    private readonly string _issuer = options.Value.Authority?.AbsoluteUri.TrimEnd('/') ?? "";

    public bool Issued(ReadOnlySpan<char> credential)
    {
        // A JWS has exactly three parts; API keys and garbage stop here without an allocation.
        if (_issuer.Length == 0 || credential.Count('.') != 2)
        {
            return false;
        }
        var text = credential.ToString();
        if (!Reader.CanReadToken(text))
        {
            return false;
        }
        try
        {
            return string.Equals(new JsonWebToken(text).Issuer.TrimEnd('/'), _issuer, StringComparison.Ordinal);
        }
        catch (ArgumentException)
        {
            // Not JSON inside: Agentry's own scheme refuses it.
            return false;
        }
    }
}
