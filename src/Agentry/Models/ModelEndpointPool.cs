extern alias PollyCore;
using System.ClientModel;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using PollyCore::Polly;
using PollyCore::Polly.CircuitBreaker;

namespace Agentry.Models;

/// <summary>
/// The endpoints of one HTTP model provider, each behind a Polly circuit breaker of its own. The breaker counts only
/// what says the server is down (a connection that fails or times out while connecting, a 5xx answer); a slow or long
/// answer, a 4xx and a cancelled request count as successes, so a breaker never opens because a model takes its time.
/// </summary>
internal sealed class ModelEndpointPool
{
    /// <summary>The share of an endpoint's recent calls that must have failed for its breaker to open.</summary>
    private const double FailureRatio = 0.5;

    private static readonly TimeSpan SamplingDuration = TimeSpan.FromSeconds(30);

    private readonly ModelEndpoint[] _endpoints;
    private int _turn = -1;

    public ModelEndpointPool(ModelProviderOptions provider, ModelOptions options, ILogger logger)
    {
        _endpoints = provider.Endpoints.Select(url => Build(provider.Name, url, options, logger)).ToArray();
    }

    public IReadOnlyList<ModelEndpoint> Endpoints => _endpoints;

    /// <summary>
    /// The endpoints in the order one call should try them: round robin over those whose breaker is closed (or
    /// half-open), then those whose breaker is open. An open breaker refuses at once, unless its break is over and
    /// this call is the one that tries the endpoint again.
    /// </summary>
    public IReadOnlyList<int> Order(bool rotate = true)
    {
        var healthy = new List<int>(_endpoints.Length);
        var down = new List<int>();
        for (var i = 0; i < _endpoints.Length; i++)
        {
            (_endpoints[i].IsDown ? down : healthy).Add(i);
        }
        if (rotate && healthy.Count > 1)
        {
            var start = (int)((uint)Interlocked.Increment(ref _turn) % (uint)healthy.Count);
            healthy = [.. healthy[start..], .. healthy[..start]];
        }
        healthy.AddRange(down);
        return healthy;
    }

    /// <summary>
    /// Asks the endpoints, healthy ones first and each through its breaker, until one answers (listing models: any
    /// endpoint will do, and a listing that fails to connect counts against the endpoint like a chat).
    /// When none answers, the last failure.
    /// </summary>
    public async Task<T> FirstAnsweringAsync<T>(Func<string, CancellationToken, Task<T>> ask, CancellationToken ct)
    {
        Exception? last = null;
        foreach (var i in Order(rotate: false))
        {
            try
            {
                return await _endpoints[i].Breaker.ExecuteAsync(async token => await ask(_endpoints[i].Url, token), ct);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                last = ex;
            }
        }
        ExceptionDispatchInfo.Throw(last!);
        return default;
    }

    private static ModelEndpoint Build(string provider, string url, ModelOptions options, ILogger logger)
    {
        var state = new CircuitBreakerStateProvider();
        var pipeline = new ResiliencePipelineBuilder()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = FailureRatio,
                MinimumThroughput = options.BreakerMinimumThroughput,
                SamplingDuration = SamplingDuration,
                BreakDuration = options.BreakDuration,
                StateProvider = state,
                ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception is { } ex && IsEndpointFailure(ex)),
                OnOpened = args =>
                {
                    ModelLog.EndpointDown(logger, provider, url, args.BreakDuration, args.Outcome.Exception?.Message ?? "");
                    return ValueTask.CompletedTask;
                },
                OnClosed = _ =>
                {
                    ModelLog.EndpointUp(logger, provider, url);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
        return new ModelEndpoint(url, pipeline, state);
    }

    /// <summary>
    /// True when <paramref name="exception"/> says the endpoint is down: no connection (refused, reset, unresolvable,
    /// or not made within the connect timeout), or a 5xx answer, as HttpClient or the OpenAI SDK reports them.
    /// </summary>
    public static bool IsEndpointFailure(Exception exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            switch (ex)
            {
                case HttpRequestException { StatusCode: { } status }:
                    return (int)status >= 500;
                case HttpRequestException:
                case SocketException:
                    return true;
                case ClientResultException { Status: >= 500 }:
                    return true;
                case ClientResultException { Status: > 0 }:
                    return false;
                // SocketsHttpHandler's ConnectTimeout: a cancellation caused by a timeout while connecting.
                case OperationCanceledException { InnerException: TimeoutException }:
                    return true;
                case OperationCanceledException:
                    return false;
            }
        }
        return false;
    }
}

/// <summary>One endpoint of a provider: its base URL and the circuit breaker its calls go through.</summary>
internal sealed record ModelEndpoint(string Url, ResiliencePipeline Breaker, CircuitBreakerStateProvider State)
{
    public bool IsDown => State.CircuitState is CircuitState.Open or CircuitState.Isolated;
}
