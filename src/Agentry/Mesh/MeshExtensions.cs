using Microsoft.Extensions.Options;

namespace Agentry.Mesh;

public static class MeshExtensions
{
    /// <summary>
    /// Kong's configuration from the route table (<c>agentry gateway kong</c>), and registration with Consul when
    /// <c>Agentry:Consul:Address</c> names an agent.
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
            var options = sp.GetRequiredService<IOptions<ConsulOptions>>().Value;
            client.BaseAddress = options.Address;
            client.Timeout = TimeSpan.FromSeconds(10);
            if (options.Token is { Length: > 0 } token)
            {
                client.DefaultRequestHeaders.Add("X-Consul-Token", token);
            }
        });
        services.AddHostedService<ConsulRegistration>();
        return builder;
    }
}
