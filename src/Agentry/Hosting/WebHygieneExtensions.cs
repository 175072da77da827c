using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

/// <summary>CORS from an explicit allow-list, security headers, and forwarded headers only from trusted proxies.</summary>
internal static class WebHygieneExtensions
{
    private const string ApiHeadersPolicy = "default-src 'none'; frame-ancestors 'none'";

    // The API reference page runs Scalar's own (locally served) scripts and styles.
    private const string DocsPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

    // The web console: its own scripts and styles only, no inline code; API calls and streams to this origin.
    private const string ConsolePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    public static IHostApplicationBuilder AddWebHygiene(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IValidateOptions<HostingOptions>, HostingOptionsValidator>();
        builder.Services.AddCors();
        builder.Services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>()
            .Configure<IOptions<HostingOptions>>((cors, hosting) => cors.AddDefaultPolicy(policy => policy
                .WithOrigins(hosting.Value.CorsOrigins)
                .WithMethods("GET", "POST", "PUT", "PATCH", "DELETE")
                .WithHeaders("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "Agentry-Workspace")
                .WithExposedHeaders("Location", "Retry-After")
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));
        builder.Services.AddOptions<ForwardedHeadersOptions>()
            .Configure<IOptions<HostingOptions>>((forwarded, hosting) => TrustProxies(forwarded, hosting.Value.TrustedProxies));
        return builder;
    }

    public static WebApplication UseWebHygiene(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<HostingOptions>>().Value.TrustedProxies.Length > 0)
        {
            app.UseForwardedHeaders();
        }
        app.Use(AddSecurityHeaders);
        app.UseCors();
        return app;
    }

    /// <summary>Set as the response starts, so error responses written after a reset carry them too.</summary>
    private static Task AddSecurityHeaders(HttpContext context, RequestDelegate next)
    {
        context.Response.OnStarting(WriteSecurityHeaders, context);
        return next(context);
    }

    private static Task WriteSecurityHeaders(object state)
    {
        var context = (HttpContext)state;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers.ContentSecurityPolicy = context.Request.Path.StartsWithSegments("/docs") ? DocsPolicy
            : context.Request.Path.StartsWithSegments("/console") ? ConsolePolicy : ApiHeadersPolicy;
        if (context.Request.IsHttps)
        {
            headers.StrictTransportSecurity = "max-age=31536000; includeSubDomains";
        }
        return Task.CompletedTask;
    }

    /// <summary>Only the configured proxies are believed; the framework's default trust of loopback is dropped.</summary>
    private static void TrustProxies(ForwardedHeadersOptions forwarded, string[] proxies)
    {
        forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
        forwarded.KnownProxies.Clear();
        forwarded.KnownIPNetworks.Clear();
        foreach (var proxy in proxies)
        {
            if (IPAddress.TryParse(proxy, out var address))
            {
                forwarded.KnownProxies.Add(address);
            }
            else
            {
                forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(proxy));
            }
        }
    }
}
