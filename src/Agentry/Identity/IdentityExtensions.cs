using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

public static class IdentityExtensions
{
    /// <summary>
    /// Users and memberships, the audit trail, the OAuth2 server (OpenIddict: password, refresh-token and
    /// client-credentials grants, revocation, introspection, keys kept in the database and rotated), API
    /// keys, service accounts, and bearer authentication (optionally also for one external OIDC issuer).
    /// </summary>
    public static IHostApplicationBuilder AddAgentryIdentity(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        var tokens = builder.Configuration.GetSection(TokenOptions.SectionName).Get<TokenOptions>() ?? new();
        services.AddOptions<TokenOptions>().BindConfiguration(TokenOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<BootstrapOptions>().BindConfiguration(BootstrapOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ExternalIdentityOptions>().BindConfiguration(ExternalIdentityOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ExternalIdentityOptions>, ExternalIdentityOptionsValidator>();
        var external = builder.Configuration.GetSection(ExternalIdentityOptions.SectionName).Get<ExternalIdentityOptions>() ?? new();
        services.AddSingleton<IPasswordHasher<User>, PasswordHasher<User>>();
        services.AddSingleton<KeyRing>();
        services.AddHostedService<KeyRotation>();
        services.AddSingleton<IOptionsChangeTokenSource<OpenIddictServerOptions>, KeyRingOptionsSource>();
        services.AddSingleton<IdentityBootstrap>();
        services.AddHostedService(sp => sp.GetRequiredService<IdentityBootstrap>());
        services.AddSingleton<AuditMetrics>();
        services.AddScoped<AuditTrail>();
        services.AddSingleton<AuditQueue>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditQueue>());

        services.AddOpenIddict()
            .AddCore(core => core.UseEntityFrameworkCore().UseDbContext<AppDbContext>())
            .AddServer(server =>
            {
                server.SetTokenEndpointUris("connect/token").SetRevocationEndpointUris("connect/revoke")
                    .SetIntrospectionEndpointUris("connect/introspect");
                server.AllowPasswordFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow();
                server.RegisterScopes([Scopes.OfflineAccess, Scopes.Email, Scopes.Profile, .. ApiKeyScopes.All]);
                server.SetAccessTokenLifetime(tokens.AccessTokenLifetime).SetRefreshTokenLifetime(tokens.RefreshTokenLifetime);
                // Rotation without grace: presenting a redeemed refresh token again revokes its whole chain.
                server.SetRefreshTokenReuseLeeway(TimeSpan.Zero);
                // Signed JWTs that any resource server can verify from JWKS; refresh tokens stay encrypted.
                server.DisableAccessTokenEncryption();
                server.AddEventHandler(PropagateRevocation.Descriptor).AddEventHandler(DetectRefreshTokenReuse.Descriptor);
                if (tokens.Issuer is not null)
                {
                    server.SetIssuer(tokens.Issuer);
                }
                var aspNetCore = server.UseAspNetCore().EnableTokenEndpointPassthrough();
                if (!tokens.RequireHttps)
                {
                    aspNetCore.DisableTransportSecurityRequirement();
                }
            });
        services.AddOptions<OpenIddictServerOptions>().Configure<KeyRing>(UseKeyRing);

        services.AddSingleton<ApiKeyGrants>();
        services.AddBearerAuthentication(external.Enabled);
        return builder;
    }

    public static WebApplication UseAgentryIdentity(this WebApplication app)
    {
        // A node's first start creates the first-party clients after the server listens; a sign-in that
        // arrives before that waits for it (OpenIddict checks the client before our handler runs).
        var bootstrap = app.Services.GetRequiredService<IdentityBootstrap>();
        app.UseWhen(static context => context.Request.Path.StartsWithSegments("/connect"), branch => branch.Use(bootstrap.WaitAsync));
        // The OAuth server's own endpoints run OpenIddict's request handlers; the API only the bearer
        // schemes. Probes and metrics never look at identity: they must answer while the database (which
        // holds the token keys) is down.
        app.UseWhen(static context => IsOAuthServer(context.Request.Path), static branch => branch.UseAuthentication());
        app.UseWhen(
            static context => !IsOAuthServer(context.Request.Path) && !IsAnonymousInfrastructure(context.Request.Path),
            static branch => branch.Use(BearerAuthentication.AuthenticateAsync));
        // WebApplication adds UseAuthentication() at the very front of the pipeline unless this marker
        // is set on the app itself; the branch above sets it only on the branch.
        ((IApplicationBuilder)app).Properties["__AuthenticationMiddlewareSet"] = true;
        // Around the access rules and the endpoints, so it sees the 403s of both.
        app.UseWhen(
            static context => context.Request.Path.StartsWithSegments("/api") || context.Request.Path.StartsWithSegments("/mcp"),
            static branch => branch.Use(AuditTrail.RecordDenialsAsync));
        app.Use(AccessRules.EnforceAsync);
        return app;
    }

    private static bool IsOAuthServer(PathString path) =>
        path.StartsWithSegments("/connect") || path.StartsWithSegments("/.well-known");

    private static bool IsAnonymousInfrastructure(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    public static IEndpointRouteBuilder MapIdentity(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/connect/token", TokenEndpoints.ExchangeAsync).RequireRateLimiting(RateLimitPolicies.SignIn).ExcludeFromDescription();
        endpoints.MapGroup("/api/v1/me").WithTags("Identity").RequireSignedIn()
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status500InternalServerError)
            .MapGet("/", MeEndpoints.GetAsync).WithName("GetMe").WithSummary("The signed-in user and their workspaces");
        endpoints.MapUsers();
        endpoints.MapMembers();
        endpoints.MapApiKeys();
        endpoints.MapServiceAccounts();
        endpoints.MapAudit();
        return endpoints;
    }

    private static void UseKeyRing(OpenIddictServerOptions server, KeyRing keys)
    {
        foreach (var key in keys.SigningKeys)
        {
            server.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.RsaSha256));
        }
        foreach (var key in keys.EncryptionKeys)
        {
            server.EncryptionCredentials.Add(new EncryptingCredentials(key, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
        }
    }
}
