using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Agentry.Identity;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Hosting;

public static class RateLimitingExtensions
{
    private static readonly RateLimitPartition<string> Unlimited = RateLimitPartition.GetNoLimiter("");

    /// <summary>
    /// ASP.NET Core's rate limiter with token buckets: every /api/v1 request draws from its principal's
    /// bucket (policy <c>api</c>, unless the route chooses another) and from its workspace's bucket when it
    /// names one; the token endpoint draws per client address (<c>signin</c>). Rejections are 429 with Retry-After.
    /// </summary>
    public static IHostApplicationBuilder AddAgentryRateLimiting(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<RateLimitOptions>()
            .BindConfiguration(RateLimitOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        // Every limited operation can answer 429; the OpenAPI document says so.
        builder.Services.ConfigureAll<OpenApiOptions>(o => o.AddOperationTransformer(static (operation, context, _) =>
        {
            if (context.Description.RelativePath is { } path && (path.StartsWith("api/", StringComparison.Ordinal) || path.StartsWith("v1/", StringComparison.Ordinal)))
            {
                operation.Responses ??= [];
                operation.Responses.TryAdd("429", new OpenApiResponse { Description = "Too many requests: a rate limit refused it; see Retry-After." });
            }
            return Task.CompletedTask;
        }));
        builder.Services.AddSingleton<RedisOutage>();
        builder.Services.AddSingleton<TokenBuckets>();
        builder.Services.AddRateLimiter(_ => { });
        builder.Services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitOptions>, TokenBuckets>(Configure);
        return builder;
    }

    /// <summary>After authentication (buckets are per principal) and routing (routes choose policies).</summary>
    public static WebApplication UseAgentryRateLimiting(this WebApplication app)
    {
        // Only what can be limited pays for the limiter: probes, metrics and docs skip it.
        app.UseWhen(
            static context => IsApi(context.Request.Path) || context.Request.Path.StartsWithSegments("/connect"),
            static branch => branch.UseRateLimiter());
        return app;
    }

    /// <summary>Runs as the server starts, where a bad setting is reported as a configuration error.</summary>
    private static void Configure(RateLimiterOptions limiter, IOptions<RateLimitOptions> options, TokenBuckets buckets)
    {
        limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        limiter.OnRejected = RejectAsync;
        if (!options.Value.Enabled)
        {
            // Routes still name their policies, so the names must exist.
            limiter.AddPolicy(RateLimitPolicies.Api, _ => Unlimited);
            limiter.AddPolicy(RateLimitPolicies.SignIn, _ => Unlimited);
            return;
        }
        // Chained: a request needs a token from its principal's bucket and then from its workspace's.
        limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(
            PartitionedRateLimiter.Create<HttpContext, string>(context => DefaultApiBucket(context, buckets)),
            PartitionedRateLimiter.Create<HttpContext, string>(context => WorkspaceBucket(context, buckets)));
        limiter.AddPolicy(RateLimitPolicies.Api, context => buckets.Get(context, RateLimitPolicies.Api, Principal(context)));
        limiter.AddPolicy(RateLimitPolicies.SignIn, context => buckets.Get(context, RateLimitPolicies.SignIn, ClientAddress(context)));
    }

    /// <summary>
    /// The principal's bucket for /api/v1 and /v1 (OpenAI-compatible) routes that chose no policy of their own.
    /// Health, metrics, docs, OpenAPI and /.well-known lie outside them and are never limited.
    /// </summary>
    private static RateLimitPartition<string> DefaultApiBucket(HttpContext context, TokenBuckets buckets) =>
        IsApi(context.Request.Path) && context.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>() is null
            ? buckets.Get(context, RateLimitPolicies.Api, Principal(context))
            : Unlimited;

    /// <summary>The limited API: Agentry's own (/api/v1), the OpenAI-compatible one (/v1) and the MCP endpoint (/mcp).</summary>
    private static bool IsApi(PathString path) =>
        path.StartsWithSegments("/api/v1") || path.StartsWithSegments("/v1") || path.StartsWithSegments("/mcp");

    /// <summary>Only for authenticated requests: an anonymous one must not spend a workspace's tokens.</summary>
    private static RateLimitPartition<string> WorkspaceBucket(HttpContext context, TokenBuckets buckets) =>
        context.User.Identity?.IsAuthenticated == true && Workspace(context) is { } workspace
            ? buckets.Get(context, RateLimitPolicies.Workspace, workspace)
            : Unlimited;

    /// <summary>The API key, else the user, else the client address.</summary>
    internal static string Principal(HttpContext context) =>
        context.User.FindFirst(AgentryClaims.KeyId)?.Value is { Length: > 0 } key ? "key:" + key
        : context.User.FindFirst(Claims.Subject)?.Value is { Length: > 0 } user ? "user:" + user
        : ClientAddress(context);

    internal static string ClientAddress(HttpContext context) => "ip:" + context.Connection.RemoteIpAddress;

    /// <summary>The key's workspace, else the one the route names; as a parsed id, so spelling cannot split a bucket.</summary>
    internal static string? Workspace(HttpContext context)
    {
        var named = context.User.FindFirst(AgentryClaims.WorkspaceId)?.Value
            ?? context.GetRouteValue("workspaceId") as string
            ?? (context.Request.Path.StartsWithSegments("/api/v1/workspaces") ? context.GetRouteValue("id") as string : null);
        return Guid.TryParse(named, out var id) ? id.ToString() : null;
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var policy = context.Items[TokenBuckets.PolicyItem] as string ?? RateLimitPolicies.Api;
        var seconds = RetryAfterSeconds(rejected.Lease);
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        context.RequestServices.GetRequiredService<ApiMetrics>().RateLimitRejected(policy);
        var problem = new ProblemDetails
        {
            Status = StatusCodes.Status429TooManyRequests,
            Title = "Too Many Requests",
            Detail = $"Rate limit '{policy}' exceeded; retry after {seconds} s.",
            Extensions = { ["code"] = ProblemCodes.RateLimited },
        };
        await context.RequestServices.GetRequiredService<IProblemDetailsService>()
            .WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }

    /// <summary>Whole seconds, at least one, from the bucket that refused (in-process and Redis leases say it differently).</summary>
    internal static int RetryAfterSeconds(RateLimitLease lease)
    {
        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var wait))
        {
            return Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        }
        return lease.TryGetMetadata(RedisRateLimiting.RateLimitMetadataName.RetryAfter, out var seconds) ? Math.Max(1, seconds) : 1;
    }
}
