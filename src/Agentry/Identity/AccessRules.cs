using Agentry.Hosting;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Authentication;

namespace Agentry.Identity;

/// <summary>The endpoint needs a signed-in caller (a user, an API key or a service account); 401 otherwise.</summary>
public sealed record SignedInRequirement
{
    public static SignedInRequirement Instance { get; } = new();
}

/// <summary>The scope an endpoint needs from an API key or service account. Users pass (their workspace role decides).</summary>
public sealed record ScopeRequirement(string Scope);

/// <summary>
/// The least workspace role an endpoint needs, in the workspace named by a route (or query) value, or, when
/// <paramref name="RouteValue"/> is null, in the request's <see cref="CurrentWorkspace"/>.
/// </summary>
public sealed record WorkspaceRoleRequirement(string Role, string? RouteValue);

/// <summary>Only platform administrators (never API keys) may call the endpoint.</summary>
public sealed record PlatformAdminRequirement;

/// <summary>
/// Access rules declared on route groups and endpoints, so the rule is both enforced and readable
/// from the endpoint table (the authorization matrix test is generated from it).
/// </summary>
public static class AccessRules
{
    /// <summary>Anyone signed in; an anonymous request gets the authentication scheme's challenge (401).</summary>
    public static TBuilder RequireSignedIn<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(SignedInRequirement.Instance);

    /// <summary>A signed-in caller; API keys and service accounts also need <paramref name="scope"/> (or <c>admin</c>), otherwise 403.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, string scope) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(SignedInRequirement.Instance, new ScopeRequirement(scope));

    /// <summary>
    /// Enforces <see cref="RequireSignedIn{TBuilder}"/> and <see cref="RequireScope{TBuilder}"/> before the endpoint
    /// reads its arguments (so an anonymous request is refused before its body is parsed). ASP.NET Core's
    /// policy-based authorization did the same for these two rules at about five times the cost per request; the
    /// rules that need the database (workspace roles, platform administrators) are endpoint filters.
    /// </summary>
    internal static Task EnforceAsync(HttpContext context, RequestDelegate next)
    {
        var metadata = context.GetEndpoint()?.Metadata;
        if (metadata?.GetMetadata<SignedInRequirement>() is null)
        {
            return next(context);
        }
        var user = context.User;
        if (user.Identity?.IsAuthenticated != true)
        {
            return context.ChallengeAsync();
        }
        // Every scope declared (by the group and by the endpoint) must be granted.
        if (user.HasClaim(static c => c.Type == AgentryClaims.WorkspaceId))
        {
            var granted = AgentryClaims.ScopesOf(user);
            foreach (var required in metadata.GetOrderedMetadata<ScopeRequirement>())
            {
                if (!ApiKeyScopes.Grants(granted, required.Scope))
                {
                    return Problem.Forbidden($"The API key or service account lacks the scope '{required.Scope}'.").ExecuteAsync(context);
                }
            }
        }
        return next(context);
    }

    /// <summary>
    /// The caller needs at least <paramref name="role"/> in the workspace whose id is the route value (or,
    /// failing that, the query parameter) <paramref name="routeValue"/>: a workspace they cannot see answers 404 (never 403, which would
    /// confirm it exists), one they see with too weak a role 403. Platform administrators pass.
    /// </summary>
    public static TBuilder RequireWorkspaceRole<TBuilder>(this TBuilder builder, string role, string routeValue = "workspaceId")
        where TBuilder : IEndpointConventionBuilder
    {
        builder.WithMetadata(new WorkspaceRoleRequirement(role, routeValue));
        builder.AddEndpointFilter(CheckWorkspaceRoleAsync);
        return builder;
    }

    /// <summary>
    /// Like <see cref="RequireWorkspaceRole{TBuilder}"/> for routes that name no workspace: the workspace is the
    /// request's <see cref="CurrentWorkspace"/> (the caller's bound one, the <c>Agentry-Workspace</c> header, or a
    /// user's only one), which the handler then binds as a parameter.
    /// </summary>
    public static TBuilder RequireCurrentWorkspaceRole<TBuilder>(this TBuilder builder, string role) where TBuilder : IEndpointConventionBuilder
    {
        builder.WithMetadata(new WorkspaceRoleRequirement(role, null));
        builder.AddEndpointFilter(CheckWorkspaceRoleAsync);
        return builder;
    }

    /// <summary>Platform administrators only; anyone else gets 403.</summary>
    public static TBuilder RequirePlatformAdmin<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        builder.WithMetadata(new PlatformAdminRequirement());
        builder.AddEndpointFilter(CheckPlatformAdminAsync);
        return builder;
    }

    private static async ValueTask<object?> CheckPlatformAdminAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        (await Caller.BindAsync(context.HttpContext)).IsPlatformAdmin
            ? await next(context)
            : Problem.Forbidden("Only platform administrators may do this.");

    private static async ValueTask<object?> CheckWorkspaceRoleAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        // The most specific declaration wins (an endpoint's over its group's); the filter runs once per declaration.
        var rule = http.GetEndpoint()?.Metadata.GetMetadata<WorkspaceRoleRequirement>();
        if (rule is null)
        {
            return await next(context);
        }
        var caller = await Caller.BindAsync(http);
        Guid workspaceId;
        if (rule.RouteValue is null)
        {
            (workspaceId, var problem) = await CurrentWorkspace.ResolveAsync(http, caller);
            if (problem is not null)
            {
                return problem;
            }
            CurrentWorkspace.Set(http, workspaceId);
        }
        else if (!Guid.TryParse(http.Request.RouteValues[rule.RouteValue] as string ?? http.Request.Query[rule.RouteValue].FirstOrDefault(), out workspaceId))
        {
            return await next(context);
        }
        if (!caller.IsPlatformAdmin)
        {
            var role = await caller.RoleInAsync(workspaceId, http.RequestAborted);
            if (role is null)
            {
                return Problem.NotFound($"Workspace {workspaceId} was not found.");
            }
            if (!Roles.Satisfies(role, rule.Role))
            {
                return Problem.Forbidden($"This needs the {rule.Role} role in the workspace; the caller is {role}.");
            }
        }
        return await next(context);
    }
}
