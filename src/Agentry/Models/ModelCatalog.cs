using System.Collections.Concurrent;
using Agentry.Hosting;
using Agentry.Usage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Models;

/// <summary>What one provider offered when last asked: its models, or why it could not say.</summary>
internal sealed record ProviderListing(string Provider, string Kind, string Status, string? Error, IReadOnlyList<ModelResponse> Models)
{
    public bool IsAvailable => Status == ModelProviderStatuses.Available;
}

/// <summary>
/// A model ready to chat with: what the catalog lists about it, and its client for one caller (telemetry, budget checks
/// and the usage ledger included).
/// </summary>
internal sealed record ChatModel(ModelResponse Model, IChatClient Client);

/// <summary>
/// Every configured provider's models, each provider's list cached briefly (a provider that is down is reported so,
/// for a shorter while, and never hides the others), and the way from a model id to the client that chats with it.
/// </summary>
internal sealed class ModelCatalog(
    IEnumerable<IModelProvider> providers, IFusionCache cache, IOptions<ModelOptions> options, UsageLedger ledger, TokenBudgets budgets,
    TimeProvider clock, ILoggerFactory loggers) : IDisposable
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
    /// The model with this id (<c>{provider}/{name}</c>), or null when no provider offers it. A provider that is down
    /// cannot say: that is a <see cref="DependencyUnavailableException"/> (503), not an unknown model.
    /// </summary>
    public async Task<ModelResponse?> FindAsync(string id, CancellationToken ct) => (await FindWithProviderAsync(id, ct))?.Model;

    /// <summary>
    /// The model with this id and its client for <paramref name="caller"/>, or null when no provider offers it (see
    /// <see cref="FindAsync"/>). A daily token budget of the caller's that is spent is a <see cref="TokenBudgetExhaustedException"/>
    /// (429), here and again before every call of the client; every call is recorded in the usage ledger.
    /// </summary>
    public async Task<ChatModel?> ResolveAsync(string id, ModelCaller caller, CancellationToken ct)
    {
        if (await FindWithProviderAsync(id, ct) is not { } found)
        {
            return null;
        }
        var (provider, model) = found;
        await budgets.CheckAsync(caller, ct);
        var client = _clients.GetOrAdd(model, m => new Lazy<Task<IChatClient>>(() => BuildAsync(provider, m)));
        try
        {
            return new ChatModel(model, new MeteredChatClient(await client.Value.WaitAsync(ct), model.Id, caller, ledger, budgets, clock));
        }
        catch (Exception) when (client.Value.IsFaulted)
        {
            _clients.TryRemove(model, out _);
            throw;
        }
    }

    private async Task<(IModelProvider Provider, ModelResponse Model)?> FindWithProviderAsync(string id, CancellationToken ct)
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
        return listing.Models.FirstOrDefault(m => m.Name == name) is { } model ? (provider, model) : null;
    }

    /// <summary>The model's shared client: the response cache (when on) in front, so a cached answer makes no span, then telemetry.</summary>
    private async Task<IChatClient> BuildAsync(IModelProvider provider, ModelResponse model)
    {
        var builder = new ChatClientBuilder(await provider.ChatClientAsync(model, CancellationToken.None));
        if (options.Value.ResponseCache is { Enabled: true, Duration: var duration })
        {
            builder.Use(inner => new ResponseCache(inner, cache, model.Id, duration));
        }
        return builder.UseOpenTelemetry(loggers, TelemetrySource).Build();
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values.Where(c => c.IsValueCreated && c.Value.IsCompletedSuccessfully))
        {
            client.Value.Result.Dispose();
        }
        _clients.Clear();
    }
}
