using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Identity;

public sealed record MembershipResponse(Guid WorkspaceId, string WorkspaceSlug, string WorkspaceName, string Role);

public sealed record MeResponse(Guid Id, string Email, string DisplayName, bool IsPlatformAdmin, IReadOnlyList<MembershipResponse> Memberships);

internal static class MeEndpoints
{
    /// <summary>A deleted or disabled user's token is refused (401) while binding <see cref="Caller"/>, as everywhere.</summary>
    internal static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> GetAsync(Caller caller, AppDbContext db, CancellationToken ct)
    {
        var id = caller.UserId;
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Problem.NotFound("The signed-in user no longer exists.");
        }
        var memberships = await db.Memberships.AsNoTracking()
            .Where(m => m.UserId == id)
            .Join(db.Workspaces, m => m.WorkspaceId, w => w.Id, (m, w) => new MembershipResponse(w.Id, w.Slug, w.Name, m.Role))
            .ToListAsync(ct);
        return TypedResults.Ok(new MeResponse(user.Id, user.Email, user.DisplayName, user.IsPlatformAdmin, memberships));
    }
}
