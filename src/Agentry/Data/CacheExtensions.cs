using System.Diagnostics.Metrics;
using Agentry.Hosting;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace Agentry.Data;

public static class CacheExtensions
{
    /// <summary>
    /// FusionCache in-process; with <c>Agentry:Cache:Redis</c> set, Redis as second level and as
    /// backplane so every node drops its copy (by key or by tag) when one node writes. Redis is an
    /// accelerator, never a dependency: when it is gone the API serves from memory and readiness says degraded.
    /// </summary>
    public static IHostApplicationBuilder AddCaching(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(CacheOptions.SectionName).Get<CacheOptions>() ?? new();
        builder.Services.AddOptions<CacheOptions>().BindConfiguration(CacheOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<CacheMetrics>();

        var cache = builder.Services.AddFusionCache()
            .WithOptions(o =>
            {
                o.CacheKeyPrefix = options.InstanceName + ":";
                o.BackplaneChannelPrefix = options.InstanceName;
                o.DistributedCacheCircuitBreakerDuration = options.RedisCircuitBreakerDuration;
                o.BackplaneCircuitBreakerDuration = options.RedisCircuitBreakerDuration;
                // Our handlers only bump counters; running them inline avoids a task per cache hit.
                o.EnableSyncEventHandlersExecution = true;
                // A failing factory (e.g. the database is down) surfaces as itself, so it maps to the right status.
                o.ReThrowOriginalExceptions = true;
            })
            .WithDefaultEntryOptions(new FusionCacheEntryOptions
            {
                Duration = options.Duration,
                IsFailSafeEnabled = true,
                FailSafeMaxDuration = options.FailSafeMaxDuration,
                FailSafeThrottleDuration = TimeSpan.FromSeconds(30),
                DistributedCacheSoftTimeout = TimeSpan.FromMilliseconds(250),
                DistributedCacheHardTimeout = TimeSpan.FromSeconds(1),
                AllowBackgroundDistributedCacheOperations = true,
                AllowBackgroundBackplaneOperations = true,
            })
            // Fields included: FusionCache keeps some of its own state in value tuples.
            .WithSerializer(new FusionCacheSystemTextJsonSerializer(new System.Text.Json.JsonSerializerOptions { IncludeFields = true }))
            .WithPostSetup((sp, fusion) => sp.GetRequiredService<CacheMetrics>().Observe(fusion));

        if (!string.IsNullOrWhiteSpace(options.Redis))
        {
            cache.AddRedis(builder.Services, options.Redis);
        }
        return builder;
    }

    /// <summary>
    /// Redis as second level and backplane. A method of its own so that the Redis client is loaded only
    /// when configured: the memory-only default never touches it.
    /// </summary>
    private static void AddRedis(this IFusionCacheBuilder cache, IServiceCollection services, string configuration)
    {
        services.AddSingleton<IConnectionMultiplexer>(_ => ConnectRedis(configuration));
        cache.WithDistributedCache(sp => new RedisCache(new RedisCacheOptions
            {
                ConnectionMultiplexerFactory = () => Task.FromResult(sp.GetRequiredService<IConnectionMultiplexer>()),
            }))
            .WithBackplane(sp => new RedisBackplane(new RedisBackplaneOptions
            {
                ConnectionMultiplexerFactory = () => Task.FromResult(sp.GetRequiredService<IConnectionMultiplexer>()),
            }));
        services.AddSingleton(sp => RedisConnectionGauge(sp.GetRequiredService<IConnectionMultiplexer>()));
        services.AddHealthChecks().AddCheck<RedisHealthCheck>(
            "redis", HealthStatus.Degraded, [HealthExtensions.ReadyTag], HealthExtensions.CheckTimeout);
    }

    /// <summary>
    /// Connects without blocking start-up on an absent server, reconnects by itself, and fails commands
    /// at once while disconnected (instead of queueing them), so a missing Redis never slows requests.
    /// </summary>
    private static ConnectionMultiplexer ConnectRedis(string configuration)
    {
        var redis = ConfigurationOptions.Parse(configuration);
        redis.AbortOnConnectFail = false;
        redis.BacklogPolicy = BacklogPolicy.FailFast;
        redis.ConnectTimeout = Math.Min(redis.ConnectTimeout, 2_000);
        redis.ConnectRetry = 1;
        redis.ReconnectRetryPolicy = new LinearRetry(500);
        return ConnectionMultiplexer.Connect(redis);
    }

    private static ConnectionGauge RedisConnectionGauge(IConnectionMultiplexer redis) =>
        new("redis", () => redis.GetServers().Count(server => server.IsConnected));
}

/// <summary>Readiness of Redis. Registered as "degraded" on failure: the cache falls back to memory.</summary>
internal sealed class RedisHealthCheck(IConnectionMultiplexer redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var latency = await redis.GetDatabase().PingAsync().WaitAsync(cancellationToken);
            return HealthCheckResult.Healthy($"ping {latency.TotalMilliseconds:0.0} ms");
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "Redis unreachable; serving from the in-process cache.", ex);
        }
    }
}

/// <summary>Cache hit and miss counters and the <c>cache_hit_ratio</c> gauge.</summary>
internal sealed class CacheMetrics
{
    private readonly Counter<long> _hits;
    private readonly Counter<long> _misses;
    private long _hitCount;
    private long _missCount;

    public CacheMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(ApiMetrics.MeterName);
        _hits = meter.CreateCounter<long>("cache_hits_total", description: "Cache lookups answered from the cache");
        _misses = meter.CreateCounter<long>("cache_misses_total", description: "Cache lookups that went to the source");
        meter.CreateObservableGauge("cache_hit_ratio", Ratio, description: "Cache hits / lookups since start");
    }

    public void Observe(IFusionCache cache)
    {
        cache.Events.Hit += (_, _) => Hit();
        cache.Events.Miss += (_, _) => Miss();
    }

    private void Hit()
    {
        Interlocked.Increment(ref _hitCount);
        _hits.Add(1);
    }

    private void Miss()
    {
        Interlocked.Increment(ref _missCount);
        _misses.Add(1);
    }

    private double Ratio()
    {
        var hits = Volatile.Read(ref _hitCount);
        var total = hits + Volatile.Read(ref _missCount);
        return total == 0 ? 0 : (double)hits / total;
    }
}
