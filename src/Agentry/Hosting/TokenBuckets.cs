using System.Threading.RateLimiting;
using Agentry.Data;
using Microsoft.Extensions.Options;
using RedisRateLimiting;
using StackExchange.Redis;

namespace Agentry.Hosting;

/// <summary>
/// The token bucket of one partition of a policy: in Redis when <c>Agentry:Cache:Redis</c> is set, so every
/// node draws from the same bucket; in-process otherwise.
/// </summary>
internal sealed class TokenBuckets(IOptions<RateLimitOptions> options, IOptions<CacheOptions> cache, RedisOutage outage, IServiceProvider services)
{
    /// <summary>The policy of the bucket asked for last; a rejection comes from the last bucket a request tried.</summary>
    public const string PolicyItem = "agentry.ratelimit.policy";

    private readonly bool _shared = !string.IsNullOrWhiteSpace(cache.Value.Redis);
    private readonly string _redisPrefix = cache.Value.InstanceName + ":ratelimit:";
    // Resolved at the first request, not at start: connecting to an absent Redis waits for its connect timeout.
    // Only Shared() names the Redis types, so without Redis their assemblies are never loaded.
    private IConnectionMultiplexer? _redis;

    public RateLimitPartition<string> Get(HttpContext context, string policy, string key)
    {
        context.Items[PolicyItem] = policy;
        var settings = options.Value.For(policy);
        var partition = policy + ":" + key;
        return _shared ? Shared(partition, settings) : RateLimitPartition.GetTokenBucketLimiter(partition, _ => InProcess(settings));
    }

    private RateLimitPartition<string> Shared(string partition, TokenBucketSettings settings)
    {
        var redis = _redis ??= services.GetRequiredService<IConnectionMultiplexer>();
        return RateLimitPartition.Get(partition, _ => new RedisTokenBucket(
            new RedisTokenBucketRateLimiter<string>(_redisPrefix + partition, InRedis(settings, redis)),
            new TokenBucketRateLimiter(InProcess(settings)),
            outage));
    }

    private static TokenBucketRateLimiterOptions InProcess(TokenBucketSettings settings) => new()
    {
        TokenLimit = settings.Burst,
        TokensPerPeriod = settings.PermitsPerPeriod,
        ReplenishmentPeriod = settings.Period,
        QueueLimit = 0,
        // The partitioned limiter's timer refills every bucket; auto-replenishment would add a timer per bucket.
        AutoReplenishment = false,
    };

    private static RedisTokenBucketRateLimiterOptions InRedis(TokenBucketSettings settings, IConnectionMultiplexer redis) => new()
    {
        TokenLimit = settings.Burst,
        TokensPerPeriod = settings.PermitsPerPeriod,
        ReplenishmentPeriod = settings.Period,
        ConnectionMultiplexerFactory = () => redis,
    };
}

/// <summary>
/// A bucket in Redis with an in-process twin that takes over while Redis is unreachable: losing Redis
/// loosens the limit to one per node for a while, it never turns requests into errors.
/// </summary>
internal sealed class RedisTokenBucket(RateLimiter redis, TokenBucketRateLimiter local, RedisOutage outage) : ReplenishingRateLimiter
{
    /// <summary>Longest wait for Redis before the request is judged by the in-process bucket.</summary>
    private static readonly TimeSpan RedisTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Idle (and so dropped by the partition cache) only when neither bucket holds state.</summary>
    public override TimeSpan? IdleDuration =>
        local.IdleDuration is { } localIdle && redis.IdleDuration is { } redisIdle ? TimeSpan.FromTicks(Math.Min(localIdle.Ticks, redisIdle.Ticks)) : null;

    public override RateLimiterStatistics? GetStatistics() => null;

    public override bool IsAutoReplenishing => false;

    public override TimeSpan ReplenishmentPeriod => local.ReplenishmentPeriod;

    /// <summary>Called by the partitioned limiter's timer; Redis refills by itself, from timestamps.</summary>
    public override bool TryReplenish() => local.TryReplenish();

    /// <summary>Redis answers only asynchronously: its "not acquired" sends the middleware on to <see cref="AcquireAsyncCore"/>.</summary>
    protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
        outage.IsOpen ? local.AttemptAcquire(permitCount) : redis.AttemptAcquire(permitCount);

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (outage.IsOpen)
        {
            return await local.AcquireAsync(permitCount, cancellationToken);
        }
        try
        {
            var lease = await redis.AcquireAsync(permitCount, cancellationToken).AsTask().WaitAsync(RedisTimeout, cancellationToken);
            outage.Ended();
            return lease;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            outage.Began(ex);
            return await local.AcquireAsync(permitCount, cancellationToken);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            redis.Dispose();
            local.Dispose();
        }
    }
}

/// <summary>
/// Whether rate limits are judged in-process because Redis failed: after a failure, for
/// <c>Agentry:Cache:RedisCircuitBreakerDuration</c>, so a dead Redis costs requests nothing.
/// </summary>
internal sealed class RedisOutage(TimeProvider clock, IOptions<CacheOptions> cache, ILogger<RedisOutage> logger)
{
    private long _retryAt;
    private int _down;

    public bool IsOpen => clock.GetTimestamp() < Volatile.Read(ref _retryAt);

    public void Began(Exception exception)
    {
        var pause = (long)(cache.Value.RedisCircuitBreakerDuration.TotalSeconds * clock.TimestampFrequency);
        Volatile.Write(ref _retryAt, clock.GetTimestamp() + pause);
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            HostingLog.RateLimitsInProcess(logger, exception);
        }
    }

    public void Ended()
    {
        if (Volatile.Read(ref _down) == 1 && Interlocked.Exchange(ref _down, 0) == 1)
        {
            HostingLog.RateLimitsInRedisAgain(logger);
        }
    }
}
