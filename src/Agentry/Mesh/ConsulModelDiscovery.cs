using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Agentry.Models;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Agentry.Mesh;

/// <summary>
/// Keeps the endpoints of each model provider with a <c>ConsulService</c> current: it asks the Consul agent for the
/// service's passing instances (<c>GET /v1/health/service/{name}?passing=true</c>) with blocking queries (the
/// <c>X-Consul-Index</c> of the last answer as <c>index</c>, <c>wait=30s</c>), so a change arrives as soon as Consul
/// knows it. While Consul cannot be reached the last endpoints stay in use, and it is asked again with back-off.
/// Readiness reports such an outage as degraded: the models still answer.
/// </summary>
internal sealed partial class ConsulModelDiscovery(
    IReadOnlyList<ModelEndpointPool> pools, IHttpClientFactory http, TimeProvider clock, ILogger<ConsulModelDiscovery> logger)
    : BackgroundService, IHealthCheck
{
    public const string HttpClientName = "consul-watch";

    /// <summary>How long Consul may hold a blocking query; it adds up to 1/16 of it as jitter.</summary>
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Queries are spaced at least this much (Consul asks clients to rate-limit blocking queries).</summary>
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan MaxBackOff = TimeSpan.FromSeconds(30);

    /// <summary>The pools whose Consul cannot be reached now, with why (by pool: a chat provider and the embedding server may share a name).</summary>
    private readonly ConcurrentDictionary<ModelEndpointPool, string> _outages = new();

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(pools.Select(pool => WatchAsync(pool, stoppingToken)));

    private async Task WatchAsync(ModelEndpointPool pool, CancellationToken ct)
    {
        var service = pool.Options.ConsulService!;
        ulong index = 0;
        var backOff = MinInterval;
        while (!ct.IsCancellationRequested)
        {
            var started = clock.GetTimestamp();
            TimeSpan pause;
            try
            {
                var (urls, next) = await QueryAsync(pool.Options, index, ct);
                // Consul's documented rules: an index that goes backwards starts over; one below 1 is never blocked on.
                index = next < index ? 0 : Math.Max(next, 1);
                pool.Discovered(urls);
                if (_outages.TryRemove(pool, out _))
                {
                    Log.ConsulBack(logger, pool.Provider, service, urls.Count);
                }
                backOff = MinInterval;
                pause = MinInterval - clock.GetElapsedTime(started);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
            {
                // Said once per outage; the endpoints Consul last listed stay in use meanwhile.
                if (_outages.TryAdd(pool, ex.Message))
                {
                    Log.ConsulDown(logger, pool.Provider, service, ex.Message, pool.Endpoints.Count);
                }
                pause = backOff;
                backOff = TimeSpan.FromTicks(Math.Min(backOff.Ticks * 2, MaxBackOff.Ticks));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            if (pause > TimeSpan.Zero && !await DelayAsync(pause, ct))
            {
                return;
            }
        }
    }

    /// <summary>The instances' URLs, in Consul's order, and the answer's <c>X-Consul-Index</c>.</summary>
    private async Task<(IReadOnlyList<string> Urls, ulong Index)> QueryAsync(ModelProviderOptions provider, ulong index, CancellationToken ct)
    {
        var query = $"v1/health/service/{Uri.EscapeDataString(provider.ConsulService!)}?passing=true";
        if (index > 0)
        {
            query += $"&index={index.ToString(CultureInfo.InvariantCulture)}&wait={(int)Wait.TotalSeconds}s";
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Wait + Wait / 16 + TimeSpan.FromSeconds(10));
        using var response = await http.CreateClient(HttpClientName).GetAsync(query, timeout.Token);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Consul answered {(int)response.StatusCode} {response.StatusCode}", null, response.StatusCode);
        }
        var instances = await response.Content.ReadFromJsonAsync<List<ConsulInstance>>(timeout.Token) ?? [];
        var next = response.Headers.TryGetValues("X-Consul-Index", out var values)
            && ulong.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0;
        return ([.. instances.Select(i => Url(provider, i)).OfType<string>().Distinct(StringComparer.Ordinal)], next);
    }

    /// <summary>
    /// An instance's base URL: the service's address, or its node's when the service registered none (Consul's own
    /// rule), its port, and the provider's <c>ConsulPath</c>. Null for an entry without either.
    /// </summary>
    internal static string? Url(ModelProviderOptions provider, ConsulInstance instance)
    {
        var host = instance.Service?.Address is { Length: > 0 } address ? address : instance.Node?.Address;
        if (string.IsNullOrEmpty(host) || instance.Service?.Port is not (int port and > 0 and <= 65_535))
        {
            return null;
        }
        var url = $"{provider.ConsulScheme}://{(host.Contains(':') ? $"[{host}]" : host)}:{port}{provider.ConsulPath}";
        return Uri.TryCreate(url, UriKind.Absolute, out _) ? url : null;
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, clock, ct);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        // Keyed by the Consul service each pool follows: a chat provider and the embedding server may share a name.
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var p in pools)
        {
            data[$"{p.Provider} ({p.Options.ConsulService})"] = _outages.TryGetValue(p, out var error)
                ? $"Consul unreachable ({error}); keeping {p.Endpoints.Count} endpoints"
                : $"{p.Endpoints.Count} endpoints from Consul service '{p.Options.ConsulService}'";
        }
        return Task.FromResult(_outages.IsEmpty
            ? HealthCheckResult.Healthy($"{pools.Count} providers discovered through Consul", data)
            : new HealthCheckResult(
                context.Registration.FailureStatus,
                string.Join("; ", _outages.Select(o => $"{o.Key.Provider}: Consul unreachable ({o.Value})")),
                data: data));
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Model provider {Provider}: Consul cannot say which instances of {Service} pass ({Error}); keeping its {Count} endpoints and asking again with back-off")]
        public static partial void ConsulDown(ILogger logger, string provider, string service, string error, int count);

        [LoggerMessage(2, LogLevel.Information, "Model provider {Provider}: Consul answers again, {Count} passing instances of {Service}")]
        public static partial void ConsulBack(ILogger logger, string provider, string service, int count);
    }
}

/// <summary>One entry of Consul's <c>/v1/health/service/{name}</c> answer, as far as discovery reads it (field names as Consul writes them).</summary>
internal sealed record ConsulInstance(ConsulInstanceNode? Node, ConsulInstanceService? Service);

internal sealed record ConsulInstanceNode(string? Node, string? Address);

internal sealed record ConsulInstanceService(string? ID, string? Service, string? Address, int? Port);
