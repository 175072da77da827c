using System.Collections.Concurrent;
using Agentry.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Models;

/// <summary>What one provider offered when last asked: its models, or why it could not say.</summary>
internal sealed record ProviderListing(string Provider, string Kind, string Status, string? Error, IReadOnlyList<ModelResponse> Models)
{
    public bool IsAvailable => Status == ModelProviderStatuses.Available;
}

/// <summary>A model ready to chat with: what the catalog lists about it, and its client (telemetry included).</summary>
internal sealed record ChatModel(ModelResponse Model, IChatClient Client);

/// <summary>
/// Every configured provider's models, each provider's list cached briefly (a provider that is down is reported so,
/// for a shorter while, and never hides the others), and the way from a model id to the client that chats with it.
/// </summary>
internal sealed class ModelCatalog(
    IEnumerable<IModelProvider> providers, IFusionCache cache, IOptions<ModelOptions> options, ILoggerFactory loggers) : IDisposable
{
    /// <summary>Spans and metrics of model calls (<c>gen_ai.*</c>) come from this source and meter.</summary>
    public const string TelemetrySource = "Agentry.Models";

    private readonly IReadOnlyList<IModelProvider> _providers = providers.ToList();
    private readonly ILogger _logger = loggers.CreateLogger<ModelCatalog>();
    // One client per model as listed (a changed listing makes a new one): the telemetry middleware owns a meter.
    private readonly ConcurrentDictionary<ModelResponse, Lazy<Task<IChatClient>>> _clients = new();

    public bool HasProviders => _providers.Count > 0;

    /// <summary>Each provider's listing, asked side by side.</summary>
    public async Task<IReadOnlyList<ProviderListing>> ListAsync(CancellationToken ct) =>
        await Task.WhenAll(_providers.Select(p => ListAsync(p, ct)));

    private async Task<ProviderListing> ListAsync(IModelProvider provider, CancellationToken ct)
    {
        var (name, kind) = (provider.Options.Name, provider.Options.Kind);
        return await cache.GetOrSetAsync<ProviderListing>(
            $"models:{name}:{kind}",
            async (context, token) =>
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(options.Value.ListTimeout);
                try
                {
                    var models = await provider.ListAsync(timeout.Token);
                    return new ProviderListing(name, kind, ModelProviderStatuses.Available, null, models);
                }
                catch (Exception ex) when (!token.IsCancellationRequested)
                {
                    var error = timeout.IsCancellationRequested
                        ? $"no answer within {options.Value.ListTimeout.TotalSeconds:0.#} s"
                        : ex.Message;
                    ModelLog.ListFailed(_logger, name, error, ex);
                    context.Options.Duration = options.Value.FailureDuration;
                    return new ProviderListing(name, kind, ModelProviderStatuses.Unavailable, error, []);
                }
            },
            entry => entry.SetDuration(options.Value.CatalogDuration).SetFailSafe(false),
            token: ct);
    }

    /// <summary>
    /// The model with this id (<c>{provider}/{name}</c>) and its client, or null when no provider offers it. A provider
    /// that is down cannot say: that is a <see cref="DependencyUnavailableException"/> (503), not an unknown model.
    /// </summary>
    public async Task<ChatModel?> ResolveAsync(string id, CancellationToken ct)
    {
        if (!ModelIds.TrySplit(id, out var providerName, out var name)
            || _providers.FirstOrDefault(p => p.Options.Name == providerName) is not { } provider)
        {
            return null;
        }
        var listing = await ListAsync(provider, ct);
        if (!listing.IsAvailable)
        {
            throw new DependencyUnavailableException($"Model provider '{providerName}' is unavailable: {listing.Error}");
        }
        if (listing.Models.FirstOrDefault(m => m.Name == name) is not { } model)
        {
            return null;
        }
        var client = _clients.GetOrAdd(model, m => new Lazy<Task<IChatClient>>(() => BuildAsync(provider, m)));
        try
        {
            return new ChatModel(model, await client.Value.WaitAsync(ct));
        }
        catch (Exception) when (client.Value.IsFaulted)
        {
            _clients.TryRemove(model, out _);
            throw;
        }
    }

    private async Task<IChatClient> BuildAsync(IModelProvider provider, ModelResponse model) =>
        new ChatClientBuilder(await provider.ChatClientAsync(model, CancellationToken.None))
            .UseOpenTelemetry(loggers, TelemetrySource)
            .Build();

    public void Dispose()
    {
        foreach (var client in _clients.Values.Where(c => c.IsValueCreated && c.Value.IsCompletedSuccessfully))
        {
            client.Value.Result.Dispose();
        }
        _clients.Clear();
    }
}
