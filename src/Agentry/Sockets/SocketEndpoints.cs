using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Agentry.Sockets;

public static class SocketEndpoints
{
    public const string Path = "/api/v1/ws";

    /// <summary>
    /// The WebSocket API (section <c>Agentry:WebSockets</c>): task and conversation events, live and resumable, sending
    /// messages and cancelling, over one connection.
    /// </summary>
    public static IHostApplicationBuilder AddWebSocketApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SocketOptions>().BindConfiguration(SocketOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.TryAddSingleton<EventSignal>();
        // The framework's request log ("Request starting … /api/v1/ws?access_token=…") is written before any middleware
        // runs, so before the token can leave the query string: it stays off whatever the configuration says.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning);
        return builder;
    }

    /// <summary>Before authentication: query-string credentials into headers, then the WebSocket handshake and keep-alive pings.</summary>
    public static WebApplication UseWebSocketApi(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<SocketOptions>>().Value;
        var sockets = new WebSocketOptions { KeepAliveInterval = options.KeepAliveInterval, KeepAliveTimeout = options.KeepAliveTimeout };
        // Browsers send their origin with the upgrade; the same origins as CORS, or any when none is configured.
        foreach (var origin in app.Services.GetRequiredService<IOptions<HostingOptions>>().Value.CorsOrigins)
        {
            sockets.AllowedOrigins.Add(origin);
        }
        app.UseWhen(static context => context.Request.Path.StartsWithSegments(Path), branch =>
        {
            branch.Use(SocketCredentials.MoveFromQueryAsync);
            branch.UseWebSockets(sockets);
        });
        return app;
    }

    /// <summary><c>GET /api/v1/ws</c>: any workspace member; each message then needs what its HTTP twin needs (scope and role).</summary>
    public static IEndpointRouteBuilder MapWebSocketApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapWorkspaceResource(Path, "WebSocket")
            .MapGet("/", ConnectAsync).WithName("ConnectWebSocket")
            .WithSummary("Upgrade to a WebSocket: subscribe to task and conversation events (resuming after a sequence number), send messages, cancel")
            .RequireCurrentWorkspaceRole(Roles.Viewer).Produces(StatusCodes.Status101SwitchingProtocols);
        return endpoints;
    }

    internal static async Task<Results<EmptyHttpResult, ProblemHttpResult>> ConnectAsync(
        HttpContext context, CurrentWorkspace workspace, Caller caller, IServiceScopeFactory scopes, EventSignal signal, IOptions<SocketOptions> options,
        TimeProvider clock, ILogger<SocketSession> logger)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problem.BadRequest("websocket_required", $"{Path} speaks WebSocket only: connect with an upgrade request (ws:// or wss://).");
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        // An access token's connection ends when the token does, and any connection when its token or key is revoked.
        var expires = long.TryParse(context.User.FindFirst("exp")?.Value, out var exp) ? DateTimeOffset.FromUnixTimeSeconds(exp) : (DateTimeOffset?)null;
        await new SocketSession(socket, caller, workspace, scopes, signal, options.Value, clock, logger)
            .RunAsync(expires, StillValid(context), context.RequestAborted);
        return TypedResults.Empty;
    }

    /// <summary>
    /// Whether the credential the connection was opened with is still good: the cached checks every request makes (a
    /// key's revocation and expiry, an access token's revocation), so a revocation reaches open connections on every node.
    /// </summary>
    private static Func<Task<bool>> StillValid(HttpContext context)
    {
        var credential = ApiKeyAuthenticationHandler.ReadCredential(context.Request).ToString();
        if (credential.StartsWith(ApiKeySecret.Marker, StringComparison.Ordinal))
        {
            var grants = context.RequestServices.GetRequiredService<ApiKeyGrants>();
            return async () => (await grants.AuthenticateAsync(context, credential, BearerAuthentication.ApiKeyScheme)).Succeeded;
        }
        // An external issuer's tokens carry no Agentry token id: they are checked when the connection opens, and end with their expiry.
        return context.User.FindFirst(AgentryClaims.TokenId)?.Value is { } tokenId
            ? async () => await BearerAuthentication.RefusalAsync(tokenId, context) is null
            : static () => Task.FromResult(true);
    }
}
