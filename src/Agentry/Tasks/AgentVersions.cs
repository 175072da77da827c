using Agentry.Agents;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Tasks;

/// <summary>
/// An agent's name and definition at one version, as tasks run with them. Versions never change, so
/// they are cached long; the worker and the completion notices share the entries.
/// </summary>
internal sealed class AgentVersions(IServiceScopeFactory scopes, IFusionCache cache)
{
    public async Task<(string Name, AgentDefinition Definition)?> FindAsync(Guid agentId, int version, CancellationToken ct)
    {
        var found = await cache.GetOrSetAsync(
            $"agent-version:{agentId}:{version}",
            async token =>
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                return await db.AgentVersions.AsNoTracking()
                    .Where(v => v.AgentId == agentId && v.Version == version)
                    .Select(v => new AgentVersionKey(v.Name, v.Definition))
                    .FirstOrDefaultAsync(token);
            },
            options => options.SetDuration(TimeSpan.FromHours(1)),
            ct);
        return found is null ? null : (found.Name, AgentDefinition.Parse(found.Definition));
    }

    private sealed record AgentVersionKey(string Name, string Definition);
}
