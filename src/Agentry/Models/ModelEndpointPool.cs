extern alias PollyCore;
using System.ClientModel;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using Agentry.Hosting;
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

    private readonly ModelProviderOptions _provider;
    private readonly ModelOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _changing = new();
    // Replaced whole, never changed in place: a call works on the snapshot it read.
    private ModelEndpoint[] _endpoints;
    private int _turn = -1;

    public ModelEndpointPool(ModelProviderOptions provider, ModelOptions options, ILogger logger)
    {
        (_provider, _options, _logger) = (provider, options, logger);
        _endpoints = [.. provider.Endpoints.Distinct(StringComparer.Ordinal).Select(Build)];
    }

    public string Provider => _provider.Name;

    public ModelProviderOptions Options => _provider;

    public IReadOnlyList<ModelEndpoint> Endpoints => Volatile.Read(ref _endpoints);

    /// <summary>
    /// Makes <paramref name="discovered"/> the endpoints (the configured ones when it is empty). An endpoint whose URL
    /// stays keeps its breaker and clients; a new one starts with a closed breaker; one that is gone drops out (a call
    /// already under way on it finishes there).
    /// </summary>
    public void Discovered(IReadOnlyList<string> discovered)
    {
        lock (_changing)
        {
            var current = _endpoints.ToDictionary(e => e.Url, StringComparer.Ordinal);
            var urls = (discovered.Count > 0 ? discovered : _provider.Endpoints).Distinct(StringComparer.Ordinal).ToList();
            if (urls.SequenceEqual(_endpoints.Select(e => e.Url), StringComparer.Ordinal))
            {
                return;
            }
            Volatile.Write(ref _endpoints, [.. urls.Select(url => current.GetValueOrDefault(url) ?? Build(url))]);
            ModelLog.EndpointsChanged(
                _logger, _provider.Name, urls.Count, urls.Except(current.Keys, StringComparer.Ordinal).ToList(),
                current.Keys.Except(urls, StringComparer.Ordinal).ToList());
        }
    }

    /// <summary>
    /// The endpoints in the order one call should try them: round robin over those whose breaker is closed (or
    /// half-open), then those whose breaker is open. An open breaker refuses at once, unless its break is over and
    /// this call is the one that tries the endpoint again.
    /// </summary>
    public IReadOnlyList<ModelEndpoint> Order(bool rotate = true)
    {
        var endpoints = Volatile.Read(ref _endpoints);
        var healthy = new List<ModelEndpoint>(endpoints.Length);
        var down = new List<ModelEndpoint>();
        foreach (var endpoint in endpoints)
        {
            (endpoint.IsDown ? down : healthy).Add(endpoint);
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
    /// Why no endpoint answered: each one's failure, or, when there were none to ask (a provider whose Consul service
    /// lists no passing instance and that has no configured fall-back), that.
    /// </summary>
    public DependencyUnavailableException Unavailable(string what, IReadOnlyList<string> failures) =>
        failures.Count > 0
            ? new($"No endpoint of {what} '{_provider.Name}' answered: {string.Join("; ", failures)}")
            : new($"The {what} '{_provider.Name}' has no endpoints: "
                + (_provider.ConsulService is { } service ? $"Consul lists no passing instance of service '{service}'." : "none is configured."));

    /// <summary>
    /// Asks the endpoints, healthy ones first and each through its breaker, until one answers (listing models: any
    /// endpoint will do, and a listing that fails to connect counts against the endpoint like a chat).
    /// When none answers, the last failure; when there is none to ask, <see cref="Unavailable"/>.
    /// </summary>
    public async Task<T> FirstAnsweringAsync<T>(Func<string, CancellationToken, Task<T>> ask, CancellationToken ct)
    {
        Exception? last = null;
        foreach (var endpoint in Order(rotate: false))
        {
            try
            {
                return await endpoint.Breaker.ExecuteAsync(async token => await ask(endpoint.Url, token), ct);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                last = ex;
            }
        }
        if (last is null)
        {
            throw Unavailable("model provider", []);
        }
        ExceptionDispatchInfo.Throw(last);
        return default;
    }

    private ModelEndpoint Build(string url)
    {
        var (provider, options, logger) = (_provider.Name, _options, _logger);
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

/// <summary>
/// One endpoint of a provider: its base URL, the circuit breaker its calls go through, and the library clients made
/// for it (one per model, made on first use, so an endpoint that appears later needs nothing rebuilt).
/// </summary>
internal sealed class ModelEndpoint(string url, ResiliencePipeline breaker, CircuitBreakerStateProvider state)
{
    private readonly ConcurrentDictionary<(Type, object), object> _clients = new();

    public string Url => url;

    public ResiliencePipeline Breaker => breaker;

    public bool IsDown => state.CircuitState is CircuitState.Open or CircuitState.Isolated;

    /// <summary>
    /// This endpoint's client for <paramref name="key"/> (a model), made by <paramref name="create"/> from the URL the
    /// first time. The clients hold only an HttpClient from IHttpClientFactory, which owns the connections, so an
    /// endpoint that drops out is simply left to the collector.
    /// </summary>
    public T Client<T>(object key, Func<string, T> create) where T : class =>
        (T)_clients.GetOrAdd((typeof(T), key), static (_, made) => made.create(made.url), (create, url));
}
