using Agentry.Hosting;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Agentry.Identity;

/// <summary>The scope an endpoint needs from an API key or service account. Users pass (their workspace role decides).</summary>
public sealed record ScopeRequirement(string Scope) : IAuthorizationRequirement;

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
    /// <summary>API keys need <paramref name="scope"/> (or <c>admin</c>); otherwise 403.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, string scope) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(policy => policy.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(scope)));

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

internal sealed class ScopeAuthorizationHandler : AuthorizationHandler<ScopeRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        var user = context.User;
        if (!user.HasClaim(c => c.Type == AgentryClaims.WorkspaceId))
        {
            context.Succeed(requirement);
        }
        else if (ApiKeyScopes.Grants(AgentryClaims.ScopesOf(user), requirement.Scope))
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(new AuthorizationFailureReason(this, $"The API key or service account lacks the scope '{requirement.Scope}'."));
        }
        return Task.CompletedTask;
    }
}

/// <summary>A refused policy answers with a problem detail that says what was missing.</summary>
internal sealed class ProblemAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden && authorizeResult.AuthorizationFailure?.FailureReasons.FirstOrDefault() is { } reason)
        {
            await Problem.Forbidden(reason.Message).ExecuteAsync(context);
            return;
        }
        await _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
