using Agentry.Hosting;
using Agentry.Models;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Agentry.Mesh;

public static class MeshExtensions
{
    /// <summary>
    /// Kong's configuration from the route table (<c>agentry gateway kong</c>); and, when <c>Agentry:Consul:Address</c>
    /// names an agent, registration with Consul and the discovery of model endpoints for providers with a <c>ConsulService</c>.
    /// </summary>
    public static IHostApplicationBuilder AddMesh(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<KongOptions>().BindConfiguration(KongOptions.SectionName).ValidateDataAnnotations();
        services.AddSingleton<KongConfiguration>();
        services.AddSingleton<KongSync>();
        services.AddHttpClient(KongSync.HttpClientName, client => client.Timeout = TimeSpan.FromSeconds(30));
        services.AddOptions<ConsulOptions>().BindConfiguration(ConsulOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ConsulOptions>, ConsulOptionsValidator>();
        if (builder.Configuration[$"{ConsulOptions.SectionName}:Address"] is not { Length: > 0 })
        {
            return builder;
        }
        services.AddHttpClient(ConsulRegistration.HttpClientName, (sp, client) =>
        {
            UseAgent(client, sp.GetRequiredService<IOptions<ConsulOptions>>().Value);
            client.Timeout = TimeSpan.FromSeconds(10);
        });
        services.AddHostedService<ConsulRegistration>();
        AddModelDiscovery(builder);
        return builder;
    }

    /// <summary>One watch per model provider (and for the embedding server) that names a Consul service; each endpoint pool is fed by it.</summary>
    private static void AddModelDiscovery(IHostApplicationBuilder builder)
    {
        var models = builder.Configuration.GetSection(ModelOptions.SectionName).Get<ModelOptions>() ?? new();
        var discovering = models.Providers
            .Where(p => p.ConsulService is { Length: > 0 } && p.Kind is ModelProviderOptions.Ollama or ModelProviderOptions.OpenAi)
            .Select(p => (object)p.Name).ToList();
        var embeddings = builder.Configuration.GetSection(EmbeddingOptions.SectionName).Get<EmbeddingOptions>() ?? new();
        if (embeddings.ConsulService is { Length: > 0 } && embeddings.Provider is EmbeddingOptions.Ollama or EmbeddingOptions.OpenAi)
        {
            discovering.Add(ModelExtensions.EmbeddingPoolKey);
        }
        if (discovering.Count == 0)
        {
            return;
        }
        var services = builder.Services;
        // Blocking queries are held by Consul for up to their wait: each sets its own deadline.
        services.AddHttpClient(ConsulModelDiscovery.HttpClientName, (sp, client) =>
        {
            UseAgent(client, sp.GetRequiredService<IOptions<ConsulOptions>>().Value);
            client.Timeout = Timeout.InfiniteTimeSpan;
        });
        services.AddSingleton(sp => new ConsulModelDiscovery(
            [.. discovering.Select(key => sp.GetRequiredKeyedService<ModelEndpointPool>(key))], sp.GetRequiredService<IHttpClientFactory>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ConsulModelDiscovery>>()));
        services.AddHostedService(sp => sp.GetRequiredService<ConsulModelDiscovery>());
        services.AddHealthChecks().Add(new HealthCheckRegistration(
            "model-discovery", sp => sp.GetRequiredService<ConsulModelDiscovery>(), HealthStatus.Degraded, [HealthExtensions.ReadyTag], HealthExtensions.CheckTimeout));
    }

    private static void UseAgent(HttpClient client, ConsulOptions options)
    {
        client.BaseAddress = options.Address;
        if (options.Token is { Length: > 0 } token)
        {
            client.DefaultRequestHeaders.Add("X-Consul-Token", token);
        }
    }
}
