extern alias PollyCore;
using Agentry.Hosting;
using Microsoft.Extensions.AI;
using PollyCore::Polly.CircuitBreaker;

namespace Agentry.Models;

/// <summary>
/// Embeds through one of a server's endpoints (one inner generator per endpoint, in the pool's order): round robin over
/// the healthy ones, and the next one when an endpoint is down (breaker open, no connection, 5xx). Embedding is
/// idempotent, so a failed call is simply asked again elsewhere. The whole call has the configured timeout.
/// </summary>
internal sealed class BalancedEmbeddingGenerator(
    string provider, ModelEndpointPool pool, IReadOnlyList<IEmbeddingGenerator<string, Embedding<float>>> generators, TimeSpan timeout)
    : IEmbeddingGenerator<string, Embedding<float>>
{
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        List<string> inputs = [.. values];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var failures = new List<string>();
        foreach (var i in pool.Order())
        {
            try
            {
                return await pool.Endpoints[i].Breaker.ExecuteAsync(
                    async token => await generators[i].GenerateAsync(inputs, options, token), deadline.Token);
            }
            catch (Exception ex) when (ex is BrokenCircuitException || ModelEndpointPool.IsEndpointFailure(ex))
            {
                failures.Add($"{pool.Endpoints[i].Url}: {ex.Message}");
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new DependencyTimeoutException(
                    $"Embedding provider '{provider}' did not answer within {timeout.TotalSeconds:0.#} s.", ex);
            }
        }
        throw new DependencyUnavailableException($"No endpoint of embedding provider '{provider}' answered: {string.Join("; ", failures)}");
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : generators[0].GetService(serviceType, serviceKey);

    public void Dispose()
    {
        foreach (var generator in generators)
        {
            generator.Dispose();
        }
    }
}
