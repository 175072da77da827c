using System.Threading.RateLimiting;
using Agentry.Data;
using Microsoft.Extensions.Options;
using RedisRateLimiting;
using StackExchange.Redis;

namespace Agentry.Hosting;

/// <summary>
/// The token bucket of one partition of a policy: in Redis when <c>Agentry:Cache:Redis</c> is set, so every
/// node draws from the same bucket; in-process otherwise. From Redis a node takes a tenth of the bucket at a time (at
/// most 100 tokens; one for a bucket under 20) and spends it within a second, so a busy principal costs one Redis call
/// per batch rather than per request.
/// </summary>
internal sealed class TokenBuckets(IOptions<RateLimitOptions> options, IOptions<CacheOptions> cache, RedisOutage outage, IServiceProvider services)
{
    /// <summary>The policy of the bucket asked for last; a rejection comes from the last bucket a request tried.</summary>
    public const string PolicyItem = "agentry.ratelimit.policy";

    /// <summary>The share of a bucket a node takes from Redis at once, and the most it takes.</summary>
    internal const int BatchShare = 10, MaxBatch = 100;

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
            outage,
            Batch(settings)));
    }

    internal static int Batch(TokenBucketSettings settings) => Math.Clamp(settings.Burst / BatchShare, 1, MaxBatch);

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
/// Tokens are taken from Redis <paramref name="batch"/> at a time and held here for <see cref="HoldFor"/>; what is not
/// spent by then is dropped. Every token still comes from the shared bucket, so across nodes the limit is the configured
/// one, give or take what the nodes hold: unspent held tokens make it a little stricter, and tokens spent up to a second
/// after Redis granted them can let a burst run over by at most a batch per node. When a batch is refused (the bucket
/// is nearly empty) requests take single tokens for a while, so a principal over its limit costs one call per request.
/// </summary>
internal sealed class RedisTokenBucket(RateLimiter redis, TokenBucketRateLimiter local, RedisOutage outage, int batch) : ReplenishingRateLimiter
{
    /// <summary>Longest wait for Redis before the request is judged by the in-process bucket.</summary>
    private static readonly TimeSpan RedisTimeout = TimeSpan.FromSeconds(1);

    /// <summary>How long tokens taken from Redis may be spent here; also how long single tokens are taken after a refused batch.</summary>
    internal static readonly TimeSpan HoldFor = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _refill = new(1, 1);
    private int _held;
    private long _heldUntil;
    private long _singlesUntil;

    /// <summary>Idle (and so dropped by the partition cache) only when neither bucket holds state.</summary>
    public override TimeSpan? IdleDuration =>
        local.IdleDuration is { } localIdle && redis.IdleDuration is { } redisIdle ? TimeSpan.FromTicks(Math.Min(localIdle.Ticks, redisIdle.Ticks)) : null;

    public override RateLimiterStatistics? GetStatistics() => null;

    public override bool IsAutoReplenishing => false;

    public override TimeSpan ReplenishmentPeriod => local.ReplenishmentPeriod;

    /// <summary>Called by the partitioned limiter's timer; Redis refills by itself, from timestamps.</summary>
    public override bool TryReplenish() => local.TryReplenish();

    /// <summary>
    /// From the tokens held here, else Redis, which answers only asynchronously: its "not acquired" sends the middleware
    /// on to <see cref="AcquireAsyncCore"/>.
    /// </summary>
    protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
        outage.IsOpen ? local.AttemptAcquire(permitCount)
        : permitCount > 0 && TryTakeHeld(permitCount) ? HeldLease.Instance
        : redis.AttemptAcquire(permitCount);

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (outage.IsOpen)
        {
            return await local.AcquireAsync(permitCount, cancellationToken);
        }
        try
        {
            var lease = await TakeAsync(permitCount, cancellationToken).WaitAsync(RedisTimeout, cancellationToken);
            outage.Ended();
            return lease;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            outage.Began(ex);
            return await local.AcquireAsync(permitCount, cancellationToken);
        }
    }

    private async Task<RateLimitLease> TakeAsync(int permitCount, CancellationToken cancellationToken)
    {
        if (permitCount == 0 || batch <= permitCount || Environment.TickCount64 < Volatile.Read(ref _singlesUntil))
        {
            return await redis.AcquireAsync(permitCount, cancellationToken);
        }
        // One refill at a time: requests that wait for it are served from what it brings.
        await _refill.WaitAsync(cancellationToken);
        try
        {
            if (TryTakeHeld(permitCount))
            {
                return HeldLease.Instance;
            }
            using var taken = await redis.AcquireAsync(batch, cancellationToken);
            if (taken.IsAcquired)
            {
                lock (_gate)
                {
                    (_held, _heldUntil) = (batch - permitCount, Environment.TickCount64 + (long)HoldFor.TotalMilliseconds);
                }
                return HeldLease.Instance;
            }
            Volatile.Write(ref _singlesUntil, Environment.TickCount64 + (long)HoldFor.TotalMilliseconds);
        }
        finally
        {
            _refill.Release();
        }
        return await redis.AcquireAsync(permitCount, cancellationToken);
    }

    private bool TryTakeHeld(int permitCount)
    {
        lock (_gate)
        {
            if (_held < permitCount || Environment.TickCount64 >= _heldUntil)
            {
                return false;
            }
            _held -= permitCount;
            return true;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            redis.Dispose();
            local.Dispose();
            _refill.Dispose();
        }
    }

    /// <summary>A token spent from those held here: nothing to give back, nothing to say.</summary>
    private sealed class HeldLease : RateLimitLease
    {
        public static readonly HeldLease Instance = new();

        public override bool IsAcquired => true;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
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
