using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>Claims Agentry relies on, besides the standard <c>sub</c>, <c>email</c> and <c>name</c>.</summary>
public static class AgentryClaims
{
    /// <summary>The API key a request authenticated with.</summary>
    public const string KeyId = "agentry_key";

    /// <summary>The service account a client-credentials token was issued to.</summary>
    public const string ServiceAccountId = "agentry_sa";

    /// <summary>The one workspace a key or service account is bound to; principals without it are users.</summary>
    public const string WorkspaceId = "agentry_ws";

    /// <summary>Granted scopes: one claim each (API keys) or one space-separated claim (OAuth tokens).</summary>
    public const string Scope = "scope";

    public static string[] ScopesOf(ClaimsPrincipal principal) =>
        principal.FindAll(Scope).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();

    /// <summary>OpenIddict's id of the stored token entry, which carries its revocation status.</summary>
    public const string TokenId = "oi_tkn_id";

    /// <summary>The subject at the external identity provider, for a request authenticated with its token (<c>sub</c> is the Agentry user).</summary>
    public const string ExternalSubject = "agentry_ext_sub";
}

/// <summary>
/// How API requests authenticate: <c>Authorization: Bearer</c> with an access token issued by
/// /connect/token (a JWT, verified locally against the key ring), an API key (<c>agt_…</c>) or, when
/// configured, an access token of the external OpenID Connect issuer.
/// </summary>
internal static class BearerAuthentication
{
    /// <summary>The default scheme: it picks the JWT or API-key handler by the credential's shape.</summary>
    public const string Scheme = "Agentry";

    public const string ApiKeyScheme = "ApiKey";

    public static void AddBearerAuthentication(this IServiceCollection services, bool externalIdentity)
    {
        services.AddHttpContextAccessor();
        services.AddSingleton<TokenStatuses>();
        var authentication = services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "Access token or API key", o => o.ForwardDefaultSelector = SelectScheme)
            .AddJwtBearer()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyScheme, null);
        if (externalIdentity)
        {
            authentication.AddExternalIdentity();
        }
        services.SkipDataProtectionAtStart();
        services.AddSingleton<ValidatedTokens>();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<KeyRing, IHttpContextAccessor, IOptions<TokenOptions>>(ConfigureJwt)
            .Configure<ValidatedTokens>(static (jwt, tokens) =>
            {
                jwt.TokenHandlers.Clear();
                jwt.TokenHandlers.Add(tokens);
            });
    }

    /// <summary>
    /// AddAuthentication brings ASP.NET Core data protection, whose hosted service reads (on a first start,
    /// creates and writes) an XML key ring before the server listens. Nothing here protects data with it
    /// (OpenIddict encrypts with the key ring in the database), so it is left to load on first use, if any.
    /// </summary>
    private static void SkipDataProtectionAtStart(this IServiceCollection services)
    {
        const string eagerKeyRing = "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService";
        if (services.FirstOrDefault(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.FullName == eagerKeyRing) is { } loader)
        {
            services.Remove(loader);
        }
    }

    /// <summary>
    /// API routes authenticate with the bearer schemes only. The framework's middleware would also run
    /// every OpenIddict request handler, which only /connect and /.well-known need.
    /// </summary>
    public static async Task AuthenticateAsync(HttpContext context, RequestDelegate next)
    {
        if ((await QuickAuthenticateAsync(context) ?? (await context.AuthenticateAsync(Scheme)).Principal) is { } principal)
        {
            context.User = principal;
        }
        await next(context);
    }

    /// <summary>
    /// The common cases without the authentication service's per-request handlers and scheme forwarding (a
    /// tenth of a cached read's cost): an access token this node has validated before, checked for revocation
    /// as always, or an API key. Anything else, and every refusal, takes the full path, which decides the same
    /// way and explains its refusal in the challenge.
    /// </summary>
    private static async ValueTask<ClaimsPrincipal?> QuickAuthenticateAsync(HttpContext context)
    {
        var credential = ApiKeyAuthenticationHandler.ReadCredential(context.Request);
        if (credential.IsEmpty)
        {
            return null;
        }
        var services = context.RequestServices;
        if (credential.StartsWith(ApiKeySecret.Marker, StringComparison.Ordinal))
        {
            return (await services.GetRequiredService<ApiKeyGrants>().AuthenticateAsync(context, credential.ToString(), ApiKeyScheme)).Principal;
        }
        return services.GetRequiredService<ValidatedTokens>().TryGetIdentity(credential.ToString(), context) is { } identity
            && await RefusalAsync(identity.FindFirst(AgentryClaims.TokenId)?.Value, context) is null
                ? new ClaimsPrincipal(identity)
                : null;
    }

    private static string SelectScheme(HttpContext context)
    {
        var credential = ApiKeyAuthenticationHandler.ReadCredential(context.Request);
        return credential.StartsWith(ApiKeySecret.Marker, StringComparison.Ordinal) ? ApiKeyScheme
            : ExternalAuthentication.IsExternal(context, credential) ? ExternalAuthentication.Scheme
            : JwtBearerDefaults.AuthenticationScheme;
    }

    private static void ConfigureJwt(JwtBearerOptions jwt, KeyRing keys, IHttpContextAccessor http, IOptions<TokenOptions> options)
    {
        var issuer = options.Value.Issuer?.AbsoluteUri;
        jwt.MapInboundClaims = false;
        jwt.TokenValidationParameters = new TokenValidationParameters
        {
            // One pinned algorithm and token type: "none", HMAC with the public key, ID or refresh
            // tokens never verify as access tokens.
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidTypes = [JsonWebTokenTypes.AccessToken, JsonWebTokenTypes.Prefixes.Application + JsonWebTokenTypes.AccessToken],
            ValidAudience = TokenOptions.Audience,
            ValidIssuer = issuer,
            // Unset issuer: OpenIddict issues for the request's own base URL, so that is what is valid.
            IssuerValidator = issuer is null ? (iss, _, _) => MatchRequestIssuer(iss, http.HttpContext) : null,
            // The ring is read on every validation, so keys rotated in by another node are picked up.
            IssuerSigningKeyResolver = (_, _, kid, _) => keys.SigningKeys.Where(k => k.KeyId == kid),
            ClockSkew = TimeSpan.FromSeconds(30),
            NameClaimType = Claims.Name,
            RoleClaimType = Claims.Role,
        };
        jwt.Events = new JwtBearerEvents { OnTokenValidated = RefuseRevokedAsync };
    }

    private static string MatchRequestIssuer(string issuer, HttpContext? context)
    {
        if (context is not null)
        {
            var request = context.Request;
            var expected = new Uri($"{request.Scheme}://{request.Host}{request.PathBase}/").AbsoluteUri;
            if (string.Equals(issuer, expected, StringComparison.Ordinal))
            {
                return issuer;
            }
        }
        throw new SecurityTokenInvalidIssuerException("The token was issued by another server.") { InvalidIssuer = issuer };
    }

    /// <summary>Revoked (signed out, reused refresh chain) access tokens are refused on every node.</summary>
    private static async Task RefuseRevokedAsync(TokenValidatedContext context)
    {
        if (await RefusalAsync(context.Principal?.FindFirst(AgentryClaims.TokenId)?.Value, context.HttpContext) is { } refusal)
        {
            context.Fail(refusal);
        }
    }

    /// <summary>Why the access token with this id (OpenIddict's token entry) is refused, or null while it is valid.</summary>
    internal static async ValueTask<string?> RefusalAsync(string? tokenId, HttpContext http)
    {
        var services = http.RequestServices;
        try
        {
            return tokenId is not null && await services.GetRequiredService<TokenStatuses>().IsValidAsync(tokenId, services, http.RequestAborted)
                ? null
                : "The access token was revoked.";
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client hung up; nobody is waiting for an answer, and it is not an error.
            return "The request was aborted.";
        }
    }
}
