using Agentry.Tasks;
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
        services.AddSingleton<VectorIndexes>();
        services.AddSingleton<KnowledgeIngestion>();
        services.AddSingleton<ITaskHandler, IngestionTaskHandler>();
        services.AddSingleton<ITaskEndHook, IngestionTaskEnds>();
        services.AddScoped<KnowledgeSearch>();
        return builder;
    }
}
