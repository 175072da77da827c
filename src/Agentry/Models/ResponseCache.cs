using Agentry.Data;
using Microsoft.Extensions.AI;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Models;

/// <summary>
/// Microsoft.Extensions.AI's response cache over FusionCache (<c>Agentry:Llm:ResponseCache</c>), for deterministic
/// requests only: temperature 0, whole or streamed. The key is a hash of the model id, the messages and the options (the
/// library's <see cref="DistributedCachingChatClient.GetCacheKey"/>). An answer served from the cache is marked, so the
/// usage ledger records it as a call that cost no tokens.
/// </summary>
internal sealed class ResponseCache : DistributedCachingChatClient
{
    /// <summary>The property a cached answer (or each of its updates) carries.</summary>
    private const string HitProperty = "agentry.cached";

    public ResponseCache(IChatClient inner, IFusionCache cache, string modelId, TimeSpan duration)
        : base(inner, new FusionDistributedCache(cache, "llm-response:", duration)) =>
        CacheKeyAdditionalValues = [modelId];

    public static bool IsHit(AdditionalPropertiesDictionary? properties) => properties?.ContainsKey(HitProperty) == true;

    /// <summary>Only a request that asks for no randomness has one right answer to remember.</summary>
    protected override bool EnableCaching(IEnumerable<ChatMessage> messages, ChatOptions? options) =>
        options is { Temperature: 0 } && base.EnableCaching(messages, options);

    protected override async Task<ChatResponse?> ReadCacheAsync(string key, CancellationToken cancellationToken)
    {
        var response = await base.ReadCacheAsync(key, cancellationToken);
        if (response is not null)
        {
            (response.AdditionalProperties ??= [])[HitProperty] = true;
        }
        return response;
    }

    protected override async Task<IReadOnlyList<ChatResponseUpdate>?> ReadCacheStreamingAsync(string key, CancellationToken cancellationToken)
    {
        var updates = await base.ReadCacheStreamingAsync(key, cancellationToken);
        foreach (var update in updates ?? [])
        {
            (update.AdditionalProperties ??= [])[HitProperty] = true;
        }
        return updates;
    }
}
