extern alias PollyCore;
using Agentry.Hosting;
using Microsoft.Extensions.AI;
using PollyCore::Polly.CircuitBreaker;

namespace Agentry.Models;

/// <summary>
/// Embeds through one of a server's endpoints (each endpoint's inner generator made on first use): round robin over
/// the healthy ones, and the next one when an endpoint is down (breaker open, no connection, 5xx). Embedding is
/// idempotent, so a failed call is simply asked again elsewhere. The whole call has the configured timeout.
/// </summary>
internal sealed class BalancedEmbeddingGenerator(
    ModelEndpointPool pool, string model, Func<string, IEmbeddingGenerator<string, Embedding<float>>> create, TimeSpan timeout)
    : IEmbeddingGenerator<string, Embedding<float>>
{
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        List<string> inputs = [.. values];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var failures = new List<string>();
        foreach (var endpoint in pool.Order())
        {
            try
            {
                return await endpoint.Breaker.ExecuteAsync(
                    async token => await Generator(endpoint).GenerateAsync(inputs, options, token), deadline.Token);
            }
            catch (Exception ex) when (ex is BrokenCircuitException || ModelEndpointPool.IsEndpointFailure(ex))
            {
                failures.Add($"{endpoint.Url}: {ex.Message}");
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new DependencyTimeoutException(
                    $"Embedding provider '{pool.Provider}' did not answer within {timeout.TotalSeconds:0.#} s.", ex);
            }
        }
        throw pool.Unavailable("embedding provider", failures);
    }

    private IEmbeddingGenerator<string, Embedding<float>> Generator(ModelEndpoint endpoint) => endpoint.Client(model, create);

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : pool.Endpoints is [var first, ..] ? Generator(first).GetService(serviceType, serviceKey)
        : null;

    /// <summary>Nothing to release: the inner generators belong to the endpoints.</summary>
    public void Dispose()
    {
    }
}
