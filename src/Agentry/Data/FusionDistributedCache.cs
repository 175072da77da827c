using Microsoft.Extensions.Caching.Distributed;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Data;

/// <summary>
/// FusionCache seen as an <see cref="IDistributedCache"/>, for library components that take one (Microsoft.Extensions.AI's
/// response cache): entries live in memory and, with Redis configured, in Redis for every node, under
/// <paramref name="prefix"/>. An entry lives for <paramref name="duration"/> unless the caller sets its own expiry.
/// Sliding expiry is not offered by FusionCache; a <c>Refresh</c> does nothing.
/// </summary>
internal sealed class FusionDistributedCache(IFusionCache cache, string prefix, TimeSpan duration) : IDistributedCache
{
    public byte[]? Get(string key) => cache.TryGet<byte[]>(prefix + key, Options(null)).GetValueOrDefault();

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default) =>
        (await cache.TryGetAsync<byte[]>(prefix + key, Options(null), token)).GetValueOrDefault();

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => cache.Set(prefix + key, value, Options(options));

    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) =>
        cache.SetAsync(prefix + key, value, Options(options), token: token).AsTask();

    public void Refresh(string key)
    {
    }

    public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

    public void Remove(string key) => cache.Remove(prefix + key);

    public Task RemoveAsync(string key, CancellationToken token = default) => cache.RemoveAsync(prefix + key, token: token).AsTask();

    /// <summary>Entries expire as asked (or after the configured duration); a stale answer is never served.</summary>
    private FusionCacheEntryOptions Options(DistributedCacheEntryOptions? asked) => new()
    {
        Duration = asked?.AbsoluteExpirationRelativeToNow ?? (asked?.AbsoluteExpiration is { } at ? at - DateTimeOffset.UtcNow : duration),
        IsFailSafeEnabled = false,
    };
}
