using Microsoft.Extensions.FileProviders;
using Microsoft.Net.Http.Headers;

namespace Agentry.WebConsole;

/// <summary>
/// The web console: static files (plain ES modules, no build step) served at <c>/console</c> from the program's own
/// directory, a client of the public API like any other, signed in through <c>/connect/token</c> with cookies instead of
/// script-held tokens (<see cref="ConsoleSession"/>).
/// </summary>
public static class ConsoleExtensions
{
    public const string Path = "/console";

    public static IHostApplicationBuilder AddWebConsole(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenIddict().AddServer(server => server
            .AddEventHandler(ConsoleSession.ExtractTokenRequest.Descriptor)
            .AddEventHandler(ConsoleSession.ApplyTokenResponse.Descriptor)
            .AddEventHandler(ConsoleSession.ExtractRevocationRequest.Descriptor));
        return builder;
    }

    /// <summary>Before identity: the console's files are public, and its cookie stands in for a bearer token on the API.</summary>
    public static WebApplication UseWebConsole(this WebApplication app)
    {
        // The site's root and /console lead to the console (a middleware: routing ignores the trailing slash).
        app.Use(static (context, next) =>
        {
            if (context.Request.Path.Value is "/" or Path && HttpMethods.IsGet(context.Request.Method))
            {
                context.Response.Redirect(Path + "/");
                return Task.CompletedTask;
            }
            return next(context);
        });
        var root = System.IO.Path.Combine(AppContext.BaseDirectory, "console");
        if (Directory.Exists(root))
        {
            var files = new PhysicalFileProvider(root);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, RequestPath = Path });
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = files,
                RequestPath = Path,
                // Small files on the same origin: revalidated (ETag) on every load, so a new version shows at once.
                OnPrepareResponse = static file => file.Context.Response.Headers.CacheControl = "no-cache",
            });
        }
        app.UseWhen(
            static context => context.Request.Path.StartsWithSegments("/api") || context.Request.Path.StartsWithSegments("/mcp")
                || context.Request.Path.StartsWithSegments("/v1"),
            static branch => branch.Use(ConsoleSession.AuthenticateFromCookieAsync));
        return app;
    }
}
