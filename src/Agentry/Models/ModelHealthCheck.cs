using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Agentry.Models;

/// <summary>
/// Readiness of the configured model providers, from the catalog's cached listings: a model server that is down makes
/// the node degraded, not unhealthy (everything else it serves still works, and other providers may still answer).
/// </summary>
internal sealed class ModelHealthCheck(ModelCatalog catalog) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var listings = await catalog.ListAsync(cancellationToken);
        var down = listings.Where(l => !l.IsAvailable).ToList();
        var data = listings.ToDictionary(l => l.Provider, l => (object)(l.Error ?? $"{l.Models.Count} models"));
        return down.Count == 0
            ? HealthCheckResult.Healthy($"{listings.Sum(l => l.Models.Count)} models from {listings.Count} providers", data)
            : new HealthCheckResult(
                context.Registration.FailureStatus,
                string.Join("; ", down.Select(l => $"{l.Provider}: {l.Error}")),
                data: data);
    }
}
