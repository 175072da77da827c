extern alias PollyCore;
using System.Runtime.CompilerServices;
using Agentry.Hosting;
using Microsoft.Extensions.AI;
using PollyCore::Polly.CircuitBreaker;

namespace Agentry.Models;

/// <summary>
/// Chats through one of a provider's endpoints (each endpoint's inner client for the model is made on first use, so
/// endpoints that Consul adds later work at once): round robin over
/// the healthy ones; an endpoint that is down (its breaker open, or the call failing to connect or answering 5xx) is
/// passed over for the next. A streamed answer fails over only until its first update: after that the caller has
/// text, and asking another endpoint would repeat it. The whole call, first token to last, has the generation timeout.
/// </summary>
internal sealed class BalancedChatClient(
    ModelEndpointPool pool, ModelResponse model, Func<string, IChatClient> create, TimeSpan generationTimeout) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        List<ChatMessage> history = [.. messages];
        using var timeout = Deadline(cancellationToken);
        var failures = new List<string>();
        foreach (var endpoint in pool.Order())
        {
            try
            {
                return await endpoint.Breaker.ExecuteAsync(
                    async token => await Client(endpoint).GetResponseAsync(history, options, token), timeout.Token);
            }
            catch (Exception ex) when (CanFailOver(ex))
            {
                failures.Add($"{endpoint.Url}: {ex.Message}");
            }
            catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw TimedOut(ex);
            }
        }
        throw Unavailable(failures);
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        List<ChatMessage> history = [.. messages];
        using var timeout = Deadline(cancellationToken);
        var (stream, hasFirst) = await OpenAsync(history, options, timeout, cancellationToken);
        await using (stream)
        {
            for (var more = hasFirst; more; more = await NextAsync(stream, timeout, cancellationToken))
            {
                yield return stream.Current;
            }
        }
    }

    /// <summary>The first endpoint that gives a first update (or ends its answer at once), and that update.</summary>
    private async Task<(IAsyncEnumerator<ChatResponseUpdate> Stream, bool HasFirst)> OpenAsync(
        List<ChatMessage> history, ChatOptions? options, CancellationTokenSource timeout, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var endpoint in pool.Order())
        {
            try
            {
                return await endpoint.Breaker.ExecuteAsync(
                    async token =>
                    {
                        var stream = Client(endpoint).GetStreamingResponseAsync(history, options, token).GetAsyncEnumerator(token);
                        try
                        {
                            return (stream, await stream.MoveNextAsync());
                        }
                        catch
                        {
                            await stream.DisposeAsync();
                            throw;
                        }
                    },
                    timeout.Token);
            }
            catch (Exception ex) when (CanFailOver(ex))
            {
                failures.Add($"{endpoint.Url}: {ex.Message}");
            }
            catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw TimedOut(ex);
            }
        }
        throw Unavailable(failures);
    }

    private async ValueTask<bool> NextAsync(IAsyncEnumerator<ChatResponseUpdate> stream, CancellationTokenSource timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await stream.MoveNextAsync();
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(ex);
        }
    }

    private CancellationTokenSource Deadline(CancellationToken cancellationToken)
    {
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(generationTimeout);
        return timeout;
    }

    /// <summary>Another endpoint may answer: this one is down, or its breaker is open.</summary>
    private static bool CanFailOver(Exception ex) => ex is BrokenCircuitException || ModelEndpointPool.IsEndpointFailure(ex);

    private IChatClient Client(ModelEndpoint endpoint) => endpoint.Client(model, create);

    private DependencyUnavailableException Unavailable(List<string> failures) => pool.Unavailable("model provider", failures);

    private DependencyTimeoutException TimedOut(Exception ex) =>
        new($"Model provider '{pool.Provider}' did not finish its answer within {generationTimeout.TotalSeconds:0.#} s.", ex);

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : pool.Endpoints is [var first, ..] ? Client(first).GetService(serviceType, serviceKey)
        : null;

    /// <summary>Nothing to release: the inner clients belong to the endpoints, and are shared by every client of the model.</summary>
    public void Dispose()
    {
    }
}
