using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Validation;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Workspaces;

/// <summary>
/// The workspace a request acts in when its route names none (<c>/api/v1/agents</c>), resolved by the
/// access rule <see cref="AccessRules.RequireCurrentWorkspaceRole{TBuilder}"/> and bound by handlers as a parameter:
/// <list type="bullet">
/// <item>an API key or service account acts in its bound workspace (a header naming another answers 404);</item>
/// <item>a user names it in the <c>Agentry-Workspace</c> header, by id or slug;</item>
/// <item>without the header, a user who belongs to exactly one workspace acts in it; otherwise 400.</item>
/// </list>
/// </summary>
// Resolved by the access rule, not read from input: without this the validation filter walks its properties on every request.
#pragma warning disable ASP0029 // SkipValidation is marked experimental in .NET 10; the generator honours it
[SkipValidation]
#pragma warning restore ASP0029
public sealed class CurrentWorkspace
{
    public const string HeaderName = "Agentry-Workspace";

    private readonly HttpContext _context;

    private CurrentWorkspace(HttpContext context) => _context = context;

    /// <summary>
    /// The resolved workspace's id, read when the handler runs: arguments are bound before the endpoint filters
    /// (where the access rule resolves it) run, so it is empty until then.
    /// </summary>
    public Guid Id => _context.Items.TryGetValue(typeof(CurrentWorkspace), out var resolved) && resolved is Guid id ? id : Guid.Empty;

    public static ValueTask<CurrentWorkspace> BindAsync(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<WorkspaceRoleRequirement>() is { RouteValue: null }
            ? ValueTask.FromResult(new CurrentWorkspace(context))
            : throw new InvalidOperationException(
                $"{context.GetEndpoint()?.DisplayName} binds {nameof(CurrentWorkspace)} but declares no {nameof(AccessRules.RequireCurrentWorkspaceRole)}().");

    /// <summary>Where the access rule leaves the resolved id for <see cref="Id"/> (and the audit trail).</summary>
    internal static void Set(HttpContext context, Guid id) => context.Items[typeof(CurrentWorkspace)] = id;

    /// <summary>The workspace the request names or implies, or the problem that answers it (400 or 404).</summary>
    internal static async Task<(Guid Id, ProblemHttpResult? Problem)> ResolveAsync(HttpContext http, Caller caller)
    {
        var named = http.Request.Headers[HeaderName].ToString();
        var ct = http.RequestAborted;
        if (named.Length == 0 && caller.BoundWorkspaceId is { } bound)
        {
            return (bound, null);
        }
        if (named.Length == 0)
        {
            return await ImpliedAsync(http, caller, ct);
        }
        var services = http.RequestServices;
        var cache = services.GetRequiredService<IFusionCache>();
        // Only a platform administrator may name a workspace that does not exist without the name being checked by a
        // membership; for everyone else the role lookup that follows answers 404 for it. Slugs never change, so the
        // id a name stands for is cached (a deleted workspace's entry leads to that same 404).
        Guid? id = Guid.TryParse(named, out var parsed) && !caller.IsPlatformAdmin
            ? parsed
            : await cache.GetOrSetAsync<Guid?>(
                NamedCacheKey(named),
                token => services.GetRequiredService<AppDbContext>().Workspaces.AsNoTracking().Where(w => w.Id == parsed || w.Slug == named).Select(w => (Guid?)w.Id).FirstOrDefaultAsync(token),
                options => options.SetDuration(TimeSpan.FromMinutes(5)),
                token: ct);
        return id is { } found && (caller.BoundWorkspaceId is null || caller.BoundWorkspaceId == found)
            ? (found, null)
            : (Guid.Empty, Problem.NotFound($"Workspace '{named}' was not found."));
    }

    /// <summary>The cached id a header's name stands for (a new workspace drops the entry for its slug).</summary>
    internal static string NamedCacheKey(string named) => $"workspace-named:{named}";

    private static async Task<(Guid Id, ProblemHttpResult? Problem)> ImpliedAsync(HttpContext http, Caller caller, CancellationToken ct)
    {
        var services = http.RequestServices;
        var cache = services.GetRequiredService<IFusionCache>();
        // Dropped with the user's /me (their memberships changed) and with any of these workspaces.
        var memberships = await cache.GetOrSetAsync<List<Guid>>(
            $"implied-workspace:{caller.UserId}",
            async (entry, token) =>
            {
                var found = await services.GetRequiredService<AppDbContext>().Memberships.AsNoTracking().Where(m => m.UserId == caller.UserId)
                    .Select(m => m.WorkspaceId).Take(2).ToListAsync(token);
                entry.Tags = [MeEndpoints.MeTag(caller.UserId), .. found.Select(Caller.MembershipTag)];
                return found;
            },
            options => options.SetDuration(TimeSpan.FromMinutes(5)),
            token: ct);
        return memberships is [var only]
            ? (only, null)
            : (Guid.Empty, Problem.Validation(HeaderName.ToLowerInvariant(),
                $"Name the workspace in the {HeaderName} header (its id or slug): the caller belongs to {(memberships.Count == 0 ? "no" : "several")} workspaces."));
    }
}
