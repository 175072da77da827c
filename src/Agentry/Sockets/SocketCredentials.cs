using System.Diagnostics;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.WebUtilities;

namespace Agentry.Sockets;

/// <summary>
/// Browsers cannot set headers on a WebSocket upgrade, so <c>/api/v1/ws</c> (and nothing else) also takes the access
/// token as <c>?access_token=</c> and the workspace as <c>?workspace=</c>. Both move into their headers
/// (<c>Authorization: Bearer</c>, <c>Agentry-Workspace</c>) before authentication, and out of the query string, so no
/// later middleware, log, trace or problem body sees the token.
/// </summary>
internal static class SocketCredentials
{
    public const string AccessTokenParameter = "access_token";
    public const string WorkspaceParameter = "workspace";

    /// <summary>OpenTelemetry's tag for the query string, recorded when the request began (values redacted by default).</summary>
    private const string QueryTag = "url.query";

    public static Task MoveFromQueryAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!request.QueryString.HasValue)
        {
            return next(context);
        }
        var query = QueryHelpers.ParseQuery(request.QueryString.Value);
        var token = query.Remove(AccessTokenParameter, out var given) ? given.ToString() : null;
        if (query.Remove(WorkspaceParameter, out var named) && request.Headers[CurrentWorkspace.HeaderName].Count == 0)
        {
            request.Headers[CurrentWorkspace.HeaderName] = named;
        }
        request.QueryString = QueryString.Create(query);
        if (Activity.Current is { } activity && activity.GetTagItem(QueryTag) is not null)
        {
            activity.SetTag(QueryTag, request.QueryString.HasValue ? request.QueryString.Value![1..] : null);
        }
        if (token is null)
        {
            return next(context);
        }
        if (token.StartsWith(ApiKeySecret.Marker, StringComparison.Ordinal))
        {
            // Keys live for months; URLs end up in proxy logs and browser history. A 15-minute access token is the one to put there.
            context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_request\"";
            return TypedResults.Problem(
                "API keys are not accepted in the URL; send the key in the Authorization header (or an access token as access_token).",
                statusCode: StatusCodes.Status401Unauthorized, extensions: new Dictionary<string, object?> { ["code"] = "unauthorized" }).ExecuteAsync(context);
        }
        if (request.Headers.Authorization.Count == 0)
        {
            request.Headers.Authorization = "Bearer " + token;
        }
        return next(context);
    }
}
