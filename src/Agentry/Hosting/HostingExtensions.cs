using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

public static class HostingExtensions
{
    /// <summary>Environment variable naming a directory of secret files (one file per key).</summary>
    public const string SecretsDirectoryVariable = "AGENTRY_SECRETS_DIR";

    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <summary>
    /// Configuration sources, Kestrel hardening, JSON conventions, problem details and validation.
    /// </summary>
    public static IHostApplicationBuilder AddAgentryHosting(this IHostApplicationBuilder builder)
    {
        // Secrets as files (Docker/Kubernetes): file "Agentry__Cache__Redis" holds the value of
        // Agentry:Cache:Redis. They come last, so they win over environment variables.
        var secrets = Environment.GetEnvironmentVariable(SecretsDirectoryVariable) ?? "/run/secrets";
        builder.Configuration.AddKeyPerFile(secrets, optional: true, reloadOnChange: false);

        if (builder is WebApplicationBuilder web)
        {
            // Program.cs starts from the slim builder, which leaves out HTTP/3, IIS, regex route constraints and
            // the Debug and EventSource log providers (memory at idle, unused here); HTTPS endpoints from configuration stay.
            web.WebHost.UseKestrelHttpsConfiguration();
            // Loopback by default: exposing the service is a decision (Urls, ASPNETCORE_URLS, HTTP_PORTS).
            if (new[] { "urls", "http_ports", "https_ports" }.All(key => string.IsNullOrEmpty(web.Configuration[key])))
            {
                web.WebHost.UseUrls(DefaultUrl);
            }
        }

        builder.Services.AddOptions<HostingOptions>()
            .BindConfiguration(HostingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddOptions<KestrelServerOptions>()
            .Configure<IOptions<HostingOptions>, ApiMetrics>((kestrel, hosting, metrics) =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = hosting.Value.MaxRequestBodyBytes;
                kestrel.Limits.MaxRequestHeadersTotalSize = hosting.Value.MaxRequestHeadersTotalBytes;
                kestrel.Limits.MaxRequestHeaderCount = hosting.Value.MaxRequestHeaderCount;
                kestrel.ConfigureEndpointDefaults(listen => listen.Use(metrics.CountConnections));
            });
        builder.Services.AddOptions<HostOptions>()
            .Configure<IOptions<HostingOptions>>((host, hosting) =>
                host.ShutdownTimeout = TimeSpan.FromSeconds(hosting.Value.ShutdownTimeoutSeconds));

        builder.Services.Configure<JsonOptions>(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
            json.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            json.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        });
        // Bad request bodies throw, so one exception handler turns them into precise problem details.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddHostedService<StartupSettling>();
        builder.AddProblems();
        builder.AddWebHygiene();
        builder.Services.AddValidation();
        builder.AddApiDocs();
        return builder;
    }

    /// <summary>The middleware every request passes through, outermost first.</summary>
    public static WebApplication UseAgentryHosting(this WebApplication app)
    {
        app.UseWebHygiene();
        app.UseApiMetrics();
        app.UseExceptionHandler();
        app.UseDrainingRequestBody();
        app.UseStatusCodePages();
        // Explicitly here (not implicitly first) so failures while routing still become problem details.
        app.UseRouting();
        return app;
    }
}
