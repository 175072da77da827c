using System.Security.Claims;
using Agentry.Data;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Identity;

/// <summary>
/// Remembers access tokens that passed validation, until they expire, so a client sending the same token
/// again costs a dictionary lookup instead of a JSON parse and an RSA verification (about half of an
/// authenticated request). Only exact, valid tokens are remembered; without a configured issuer a remembered
/// token still counts only on the host it was issued for. Every request still runs the revocation check
/// (JwtBearer's OnTokenValidated, or the quick path's), and each gets its own copy of the identity.
/// </summary>
internal sealed class ValidatedTokens(IHttpContextAccessor http, TimeProvider clock) : TokenHandler, IDisposable
{
    private const int Capacity = 20_000;

    /// <summary>A remembered validation is re-done at least this often (a removed signing key counts from then).</summary>
    private static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);

    private readonly JsonWebTokenHandler _inner = new() { MapInboundClaims = false };
    private readonly MemoryCache _valid = new(new MemoryCacheOptions { SizeLimit = Capacity });

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (TryGet(token, http.HttpContext) is { } known)
        {
            return new TokenValidationResult
            {
                IsValid = true,
                SecurityToken = known.Result.SecurityToken,
                ClaimsIdentity = known.Result.ClaimsIdentity.Clone(),
                Issuer = known.Result.Issuer,
                TokenType = known.Result.TokenType,
            };
        }
        var result = await _inner.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken.ValidTo > clock.UtcNow())
        {
            var expires = new DateTimeOffset(result.SecurityToken.ValidTo, TimeSpan.Zero);
            var cap = clock.GetUtcNow() + MaxAge;
            // With a configured issuer the token is valid on any host; otherwise only on the one it names.
            var host = validationParameters.ValidIssuer is null ? result.Issuer : null;
            _valid.Set(token, new Remembered(result, host), new MemoryCacheEntryOptions { AbsoluteExpiration = expires < cap ? expires : cap, Size = 1 });
        }
        return result;
    }

    /// <summary>
    /// A copy of the identity of <paramref name="token"/> if it passed validation here, has not expired and
    /// belongs to this request's host, for <see cref="BearerAuthentication"/>'s quick path (which still checks
    /// revocation); otherwise null.
    /// </summary>
    public ClaimsIdentity? TryGetIdentity(string token, HttpContext context) =>
        TryGet(token, context)?.Result.ClaimsIdentity.Clone();

    public override SecurityToken ReadToken(string token) => _inner.ReadToken(token);

    public void Dispose() => _valid.Dispose();

    private Remembered? TryGet(string token, HttpContext? context) =>
        _valid.TryGetValue(token, out Remembered? known)
        && known!.Result.SecurityToken.ValidTo > clock.UtcNow()
        && (known.Host is null || (context is not null && IsBaseUrlOf(known.Host, context.Request)))
            ? known
            : null;

    /// <summary>Whether <paramref name="issuer"/> is <c>{scheme}://{host}{pathBase}/</c> of the request (without building that string).</summary>
    private static bool IsBaseUrlOf(string issuer, HttpRequest request)
    {
        var rest = issuer.AsSpan();
        return Take(ref rest, request.Scheme) && Take(ref rest, "://") && Take(ref rest, request.Host.Value)
            && Take(ref rest, request.PathBase.Value) && rest is "/";

        static bool Take(ref ReadOnlySpan<char> rest, string? part)
        {
            if (!rest.StartsWith(part, StringComparison.Ordinal))
            {
                return false;
            }
            rest = rest[(part?.Length ?? 0)..];
            return true;
        }
    }

    /// <summary>A validation and, when no issuer is configured, the base URL (the token's issuer) it holds for.</summary>
    private sealed record Remembered(TokenValidationResult Result, string? Host);
}
