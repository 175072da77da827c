using System.Security.Cryptography;
using System.Text;
using Agentry.Hosting;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Agentry.WebConsole;

/// <summary>
/// The web console's session: the first-party client <c>agentry-console</c> signs in through <c>/connect/token</c> like
/// any client, but its tokens never reach script. The token response moves them into HttpOnly, SameSite=Strict cookies
/// (the refresh token's only sent to <c>/connect</c>); a refresh or a sign-out names no token and the cookie supplies it;
/// API requests that carry the access cookie and no <c>Authorization</c> header are authenticated with it. CSRF: every
/// console call to <c>/connect</c> carries the <c>X-Agentry-Console</c> header (a cross-site form cannot set one), and
/// every unsafe API call, refresh and sign-out also the double-submit <c>X-Agentry-Csrf</c> header equal to the readable
/// <c>agentry_csrf</c> cookie that the sign-in set.
/// </summary>
internal static class ConsoleSession
{
    public const string ClientId = "agentry-console";
    public const string AccessCookie = "agentry_access";
    public const string RefreshCookie = "agentry_refresh";
    public const string CsrfCookie = "agentry_csrf";
    public const string CsrfHeader = "X-Agentry-Csrf";
    public const string ConsoleHeader = "X-Agentry-Console";
    private const string RefreshPath = "/connect";

    /// <summary>API middleware: the access cookie stands in for a bearer token when the request brings none.</summary>
    public static Task AuthenticateFromCookieAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (request.Headers.Authorization.Count > 0 || !request.Cookies.TryGetValue(AccessCookie, out var token) || token.Length == 0)
        {
            return next(context);
        }
        if (context.WebSockets.IsWebSocketRequest)
        {
            // A browser cannot set headers on an upgrade; it does send its origin, which must be this one.
            if (!SameOrigin(request))
            {
                return Problem.Forbidden("A WebSocket signed in with the console's cookie must come from the console's own origin.").ExecuteAsync(context);
            }
        }
        else if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method) && !CsrfHolds(request))
        {
            return Problem.Forbidden($"A request signed in with the console's cookie must send the {CsrfHeader} header equal to the {CsrfCookie} cookie.")
                .ExecuteAsync(context);
        }
        request.Headers.Authorization = "Bearer " + token;
        return next(context);
    }

    private static bool CsrfHolds(HttpRequest request) =>
        request.Cookies.TryGetValue(CsrfCookie, out var cookie) && cookie.Length > 0
        && request.Headers[CsrfHeader].ToString() is { Length: > 0 } header
        && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(cookie), Encoding.UTF8.GetBytes(header));

    private static bool SameOrigin(HttpRequest request) =>
        Uri.TryCreate(request.Headers.Origin.ToString(), UriKind.Absolute, out var origin)
        && string.Equals(origin.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);

    private static bool IsConsole(OpenIddictServerTransaction transaction, out HttpRequest request)
    {
        request = transaction.GetHttpRequest()!;
        return transaction.Request?.ClientId == ClientId && request is not null;
    }

    /// <summary>Refuses a console call without its header, and fills in the refresh token from the cookie.</summary>
    internal sealed class ExtractTokenRequest : IOpenIddictServerHandler<ExtractTokenRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ExtractTokenRequestContext>()
            .UseSingletonHandler<ExtractTokenRequest>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractTokenRequestContext>.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ExtractTokenRequestContext context)
        {
            if (!IsConsole(context.Transaction, out var http) || context.Request is not { } request)
            {
                return ValueTask.CompletedTask;
            }
            if (http.Headers[ConsoleHeader].Count == 0)
            {
                context.Reject(Errors.InvalidRequest, $"The console's requests must carry the {ConsoleHeader} header.");
            }
            else if (request.IsRefreshTokenGrantType() && string.IsNullOrEmpty(request.RefreshToken))
            {
                if (!CsrfHolds(http))
                {
                    context.Reject(Errors.InvalidRequest, $"A refresh from the console must send the {CsrfHeader} header equal to the {CsrfCookie} cookie.");
                }
                else if (http.Cookies.TryGetValue(RefreshCookie, out var refresh))
                {
                    request.RefreshToken = refresh;
                }
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Moves the console's tokens out of the response body into cookies; a failed refresh clears them.</summary>
    internal sealed class ApplyTokenResponse(TimeProvider clock) : IOpenIddictServerHandler<ApplyTokenResponseContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<ApplyTokenResponse>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ProcessJsonResponse<ApplyTokenResponseContext>.Descriptor.Order - 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ApplyTokenResponseContext context)
        {
            if (!IsConsole(context.Transaction, out var http))
            {
                return ValueTask.CompletedTask;
            }
            var response = context.Response;
            var cookies = http.HttpContext.Response.Cookies;
            if (response.AccessToken is { } access)
            {
                var now = clock.GetUtcNow();
                var lifetime = TimeSpan.FromSeconds((long?)response.ExpiresIn ?? 900);
                cookies.Append(AccessCookie, access, Options(http, "/", httpOnly: true, now + lifetime));
                if (response.RefreshToken is { } refresh)
                {
                    var refreshLifetime = context.Transaction.Options.RefreshTokenLifetime ?? TimeSpan.FromDays(14);
                    cookies.Append(RefreshCookie, refresh, Options(http, RefreshPath, httpOnly: true, now + refreshLifetime));
                    // A new session gets a new CSRF secret; a refresh keeps the page's.
                    if (context.Request?.IsPasswordGrantType() == true || !http.Cookies.ContainsKey(CsrfCookie))
                    {
                        cookies.Append(CsrfCookie, Convert.ToHexString(RandomNumberGenerator.GetBytes(32)), Options(http, "/", httpOnly: false, now + refreshLifetime));
                    }
                }
                response.AccessToken = null;
                response.RefreshToken = null;
                response.IdToken = null;
            }
            else if (response.Error is not null && context.Request?.IsRefreshTokenGrantType() == true)
            {
                Clear(http);
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Sign-out: the refresh token comes from the cookie (revoking it revokes its chain), and the cookies go.</summary>
    internal sealed class ExtractRevocationRequest : IOpenIddictServerHandler<ExtractRevocationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<ExtractRevocationRequestContext>()
            .UseSingletonHandler<ExtractRevocationRequest>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ExtractPostRequest<ExtractRevocationRequestContext>.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

        public ValueTask HandleAsync(ExtractRevocationRequestContext context)
        {
            if (!IsConsole(context.Transaction, out var http) || context.Request is not { } request || !string.IsNullOrEmpty(request.Token))
            {
                return ValueTask.CompletedTask;
            }
            if (http.Headers[ConsoleHeader].Count == 0 || !CsrfHolds(http))
            {
                context.Reject(Errors.InvalidRequest, $"A sign-out from the console must send the {ConsoleHeader} header and the {CsrfHeader} header equal to the {CsrfCookie} cookie.");
                return ValueTask.CompletedTask;
            }
            Clear(http);
            if (http.Cookies.TryGetValue(RefreshCookie, out var refresh))
            {
                request.Token = refresh;
                request.TokenTypeHint = TokenTypeHints.RefreshToken;
            }
            else if (http.Cookies.TryGetValue(AccessCookie, out var access))
            {
                request.Token = access;
                request.TokenTypeHint = TokenTypeHints.AccessToken;
            }
            return ValueTask.CompletedTask;
        }
    }

    private static void Clear(HttpRequest http)
    {
        var cookies = http.HttpContext.Response.Cookies;
        cookies.Delete(AccessCookie, Options(http, "/", httpOnly: true, null));
        cookies.Delete(RefreshCookie, Options(http, RefreshPath, httpOnly: true, null));
        cookies.Delete(CsrfCookie, Options(http, "/", httpOnly: false, null));
    }

    private static CookieOptions Options(HttpRequest http, string path, bool httpOnly, DateTimeOffset? expires) => new()
    {
        Path = path,
        HttpOnly = httpOnly,
        Secure = http.IsHttps,
        SameSite = SameSiteMode.Strict,
        Expires = expires,
        IsEssential = true,
    };
}
