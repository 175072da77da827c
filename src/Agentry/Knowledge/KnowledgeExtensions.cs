using Agentry.Hosting;
using Agentry.Tasks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

public static class KnowledgeExtensions
{
    /// <summary>
    /// Knowledge bases: collections, documents and search, the ingestion handler the task workers run, and the vector
    /// providers, each a keyed <see cref="IVectorIndex"/> under its <see cref="VectorProviders"/> name.
    /// </summary>
    public static IHostApplicationBuilder AddKnowledge(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<KnowledgeOptions>().BindConfiguration(KnowledgeOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<KnowledgeOptions>, KnowledgeOptionsValidator>();
        services.AddKeyedSingleton<IVectorIndex, UsearchVectorIndex>(VectorProviders.Embedded);
        services.AddKeyedSingleton<IVectorIndex, ChromaVectorIndex>(VectorProviders.Chroma);
        services.AddKeyedSingleton<IVectorIndex, QdrantVectorIndex>(VectorProviders.Qdrant);
        AddChromaHttpClient(services);
        var configured = builder.Configuration.GetSection(KnowledgeOptions.SectionName).Get<KnowledgeOptions>() ?? new();
        if (configured.Chroma.Url is not null || configured.Qdrant.Url is not null)
        {
            services.AddHealthChecks().AddCheck<VectorServerHealthCheck>(
                "vectors", HealthStatus.Degraded, [HealthExtensions.ReadyTag], HealthExtensions.CheckTimeout);
        }
        services.AddKeyedSingleton(VectorProviders.Qdrant, static (sp, _) => QdrantVectorIndex.Connect(
            sp.GetRequiredService<IOptions<KnowledgeOptions>>().Value.Qdrant, sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<VectorIndexes>();
        services.AddSingleton<KnowledgeIngestion>();
        services.AddSingleton<ITaskHandler, IngestionTaskHandler>();
        services.AddSingleton<ITaskEndHook, IngestionTaskEnds>();
        services.AddScoped<KnowledgeSearch>();
        // Retrieval for agents and conversations.
        services.AddOptions<RetrievalOptions>().BindConfiguration(RetrievalOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<KnowledgeRetrieval>();
        return builder;
    }

    /// <summary>
    /// ChromaDB is chosen by the operator, so it is called directly, not through the egress guard. Connecting is bounded
    /// apart from the whole call; the token rides in a default header whose value the client's logs redact.
    /// </summary>
    private static void AddChromaHttpClient(IServiceCollection services) =>
        services.AddHttpClient(ChromaVectorIndex.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => new SocketsHttpHandler
            {
                ConnectTimeout = sp.GetRequiredService<IOptions<KnowledgeOptions>>().Value.Chroma.ConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            .ConfigureHttpClient(static (sp, client) =>
            {
                var chroma = sp.GetRequiredService<IOptions<KnowledgeOptions>>().Value.Chroma;
                if (chroma.Url is not null)
                {
                    client.BaseAddress = new Uri(chroma.Url.TrimEnd('/') + "/api/v2/");
                }
                client.Timeout = chroma.Timeout;
                if (chroma.Token is { Length: > 0 } token)
                {
                    client.DefaultRequestHeaders.TryAddWithoutValidation(
                        chroma.TokenHeader, chroma.TokenHeader == "Authorization" ? $"Bearer {token}" : token);
                }
            })
            .RedactLoggedHeaders(static _ => true);
}
