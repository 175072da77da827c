using Agentry.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Agentry.Models;

public static class ModelExtensions
{
    /// <summary>The HTTP client model servers are called with.</summary>
    internal const string HttpClientName = "models";

    /// <summary>The HTTP client embedding servers are called with.</summary>
    internal const string EmbeddingHttpClientName = "embeddings";

    /// <summary>The key of the embedding server's <see cref="ModelEndpointPool"/>: an object, so no provider name can take it.</summary>
    internal static readonly object EmbeddingPoolKey = new();

    /// <summary>
    /// Chat model providers (section <c>Agentry:Llm</c>) and the catalog of their models. Provider libraries (OllamaSharp,
    /// the OpenAI SDK, LLamaSharp and llama.cpp) are loaded only for kinds that are configured; with none configured
    /// there are no models and nothing is loaded or downloaded.
    /// </summary>
    public static IHostApplicationBuilder AddModels(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ModelOptions>().BindConfiguration(ModelOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ModelOptions>, ModelOptionsValidator>();
        services.AddSingleton<ModelCatalog>();

        var options = builder.Configuration.GetSection(ModelOptions.SectionName).Get<ModelOptions>() ?? new();
        if (options.Providers.Count == 0)
        {
            return builder;
        }
        // The one switch that picks each provider's implementation; the options validator names a wrong kind.
        foreach (var provider in options.Providers)
        {
            switch (provider.Kind)
            {
                case ModelProviderOptions.Ollama:
                    AddOllama(services, provider);
                    break;
                case ModelProviderOptions.OpenAi:
                    AddOpenAi(services, provider);
                    break;
                case ModelProviderOptions.LlamaCpp:
                    AddLlamaCpp(services, provider);
                    break;
            }
        }
        // Model servers are chosen by the operator, not by users, so they are called directly and not through the
        // egress guard (which exists to stop user-supplied URLs from reaching private addresses; model servers
        // usually live on exactly such addresses). Connecting is bounded; generating may take as long as it takes.
        services.AddHttpClient(HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                ConnectTimeout = options.ConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan);
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddMeter(ModelCatalog.TelemetrySource));
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddSource(ModelCatalog.TelemetrySource));
        services.AddHealthChecks().AddCheck<ModelHealthCheck>(
            "models", HealthStatus.Degraded, [HealthExtensions.ReadyTag], HealthExtensions.CheckTimeout);
        return builder;
    }

    // Methods of their own, so that a provider's library is loaded only when one of its kind is configured.
    private static void AddOllama(IServiceCollection services, ModelProviderOptions provider)
    {
        AddPool(services, provider);
        services.AddSingleton<IModelProvider>(sp => new OllamaModelProvider(
            provider, Pool(sp, provider), sp.GetRequiredService<IOptions<ModelOptions>>().Value, sp.GetRequiredService<IHttpClientFactory>()));
    }

    private static void AddOpenAi(IServiceCollection services, ModelProviderOptions provider)
    {
        AddPool(services, provider);
        services.AddSingleton<IModelProvider>(sp => new OpenAiModelProvider(
            provider, Pool(sp, provider), sp.GetRequiredService<IOptions<ModelOptions>>().Value, sp.GetRequiredService<IHttpClientFactory>()));
    }

    /// <summary>An HTTP provider's endpoints, keyed by its name: its provider reads them, Consul discovery (when configured) changes them.</summary>
    private static void AddPool(IServiceCollection services, ModelProviderOptions provider) =>
        services.AddKeyedSingleton(provider.Name, (sp, _) => new ModelEndpointPool(
            provider, sp.GetRequiredService<IOptions<ModelOptions>>().Value, Logger(sp)));

    private static ModelEndpointPool Pool(IServiceProvider services, ModelProviderOptions provider) =>
        services.GetRequiredKeyedService<ModelEndpointPool>(provider.Name);

    private static ILogger Logger(IServiceProvider services) => services.GetRequiredService<ILoggerFactory>().CreateLogger<ModelCatalog>();

    private static void AddLlamaCpp(IServiceCollection services, ModelProviderOptions provider)
    {
        services.TryAddSingleton<LlamaCppModels>();
        services.AddSingleton<IModelProvider>(sp => new LlamaCppModelProvider(provider, sp.GetRequiredService<LlamaCppModels>()));
    }

    /// <summary>
    /// The embedding model (section <c>Agentry:Embeddings</c>): all-MiniLM-L6-v2 in-process unless another provider is
    /// configured. Nothing is loaded at start: MiniLM's encoder is made on first use, a server's client on first resolve.
    /// </summary>
    public static IHostApplicationBuilder AddEmbeddings(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<EmbeddingOptions>().BindConfiguration(EmbeddingOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<EmbeddingOptions>, EmbeddingOptionsValidator>();
        var options = builder.Configuration.GetSection(EmbeddingOptions.SectionName).Get<EmbeddingOptions>() ?? new();
        // The one switch that picks the provider; the options validator names a wrong one.
        Func<IServiceProvider, IEmbeddingGenerator<string, Embedding<float>>> generator = options.Provider switch
        {
            EmbeddingOptions.Ollama => OllamaEmbeddings,
            EmbeddingOptions.OpenAi => OpenAiEmbeddings,
            _ => static _ => new MiniLmEmbeddingGenerator(),
        };
        if (options.Provider is EmbeddingOptions.Ollama or EmbeddingOptions.OpenAi)
        {
            AddEmbeddingHttpClient(services);
            services.AddKeyedSingleton(EmbeddingPoolKey, (sp, _) => EmbeddingPool(sp));
        }
        services.AddSingleton(sp => new EmbeddingModels(
            sp.GetRequiredService<IOptions<EmbeddingOptions>>(), generator(sp), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(sp => sp.GetRequiredService<EmbeddingModels>().Generator);
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddMeter(ModelCatalog.TelemetrySource));
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddSource(ModelCatalog.TelemetrySource));
        return builder;
    }

    // Methods of their own, so that OllamaSharp or the OpenAI SDK is loaded only when its provider is configured.
    private static IEmbeddingGenerator<string, Embedding<float>> OllamaEmbeddings(IServiceProvider services) =>
        BalancedEmbeddings(services, (url, options, http) => OllamaModelProvider.Client(url, options.ModelName, http));

    private static IEmbeddingGenerator<string, Embedding<float>> OpenAiEmbeddings(IServiceProvider services) =>
        BalancedEmbeddings(services, (url, options, http) =>
            OpenAiModelProvider.Client(url, options.ApiKey, http).GetEmbeddingClient(options.ModelName).AsIEmbeddingGenerator());

    private static BalancedEmbeddingGenerator BalancedEmbeddings(
        IServiceProvider services, Func<string, EmbeddingOptions, HttpClient, IEmbeddingGenerator<string, Embedding<float>>> endpoint)
    {
        var options = services.GetRequiredService<IOptions<EmbeddingOptions>>().Value;
        var http = services.GetRequiredService<IHttpClientFactory>();
        var pool = services.GetRequiredKeyedService<ModelEndpointPool>(EmbeddingPoolKey);
        return new BalancedEmbeddingGenerator(
            pool, options.ModelName, url => endpoint(url, options, http.CreateClient(EmbeddingHttpClientName)), options.Timeout);
    }

    /// <summary>
    /// The embedding server's endpoints: one more provider to the pool, with the chat providers' breaker settings, which
    /// Consul discovery feeds when <c>Agentry:Embeddings:ConsulService</c> is set.
    /// </summary>
    private static ModelEndpointPool EmbeddingPool(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<EmbeddingOptions>>().Value;
        var provider = new ModelProviderOptions
        {
            Name = options.Provider, Kind = options.Provider, Endpoints = options.Endpoints,
            ConsulService = options.ConsulService, ConsulPath = options.ConsulPath, ConsulScheme = options.ConsulScheme,
        };
        return new ModelEndpointPool(provider, services.GetRequiredService<IOptions<ModelOptions>>().Value, Logger(services));
    }

    private static void AddEmbeddingHttpClient(IServiceCollection services) =>
        services.AddHttpClient(EmbeddingHttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => new SocketsHttpHandler
            {
                ConnectTimeout = sp.GetRequiredService<IOptions<ModelOptions>>().Value.ConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            .ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan)
            .AddHttpMessageHandler(() => new ServerErrorHandler());
}
