using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Qdrant.Client;

namespace Agentry.Knowledge;

/// <summary>
/// Readiness of the configured vector servers: ChromaDB's heartbeat, Qdrant's health call. A server that is down makes
/// the node degraded, not unhealthy: keyword search and the collections of other providers still work. The answer names
/// the provider and what went wrong, never its address (the probe is public).
/// </summary>
internal sealed class VectorServerHealthCheck(IOptions<KnowledgeOptions> options, IHttpClientFactory http, IServiceProvider services) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var states = new Dictionary<string, object>();
        if (options.Value.Chroma.Url is not null)
        {
            states[VectorProviders.Chroma] = await ChromaAsync(cancellationToken);
        }
        if (options.Value.Qdrant.Url is not null)
        {
            states[VectorProviders.Qdrant] = await QdrantAsync(cancellationToken);
        }
        var down = states.Where(s => (string)s.Value != "up").Select(s => $"{s.Key}: {s.Value}").ToList();
        return down.Count == 0
            ? HealthCheckResult.Healthy(string.Join(", ", states.Keys) + " up", states)
            : new HealthCheckResult(context.Registration.FailureStatus, string.Join("; ", down), data: states);
    }

    private async Task<string> ChromaAsync(CancellationToken ct)
    {
        try
        {
            using var response = await http.CreateClient(ChromaVectorIndex.HttpClientName).GetAsync("heartbeat", ct);
            return response.IsSuccessStatusCode ? "up" : $"answered {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return "unreachable";
        }
    }

    private async Task<string> QdrantAsync(CancellationToken ct)
    {
        try
        {
            await services.GetRequiredKeyedService<QdrantClient>(VectorProviders.Qdrant).HealthAsync(ct);
            return "up";
        }
        catch (Grpc.Core.RpcException ex) when (!ct.IsCancellationRequested)
        {
            return ex.StatusCode == Grpc.Core.StatusCode.Unavailable ? "unreachable" : $"answered {ex.StatusCode}";
        }
    }
}
