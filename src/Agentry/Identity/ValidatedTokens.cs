using System.Security.Claims;
using Agentry.Data;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Identity;

/// <summary>
/// Remembers access tokens that passed validation, until they expire, so a client sending the same token
/// again costs a dictionary lookup instead of a JSON parse and an RSA verification (about half of an
/// authenticated request). Only exact, valid tokens are remembered, keyed together with the host they
/// must have been issued for; every request still runs the revocation check (JwtBearer's
/// OnTokenValidated), and each gets its own copy of the identity.
/// </summary>
internal sealed class ValidatedTokens(IHttpContextAccessor http, TimeProvider clock) : TokenHandler, IDisposable
{
    private const int Capacity = 20_000;

    /// <summary>A remembered validation is re-done at least this often (a removed signing key counts from then).</summary>
    private static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);

    private readonly JsonWebTokenHandler _inner = new() { MapInboundClaims = false };
    private readonly MemoryCache _valid = new(new MemoryCacheOptions { SizeLimit = Capacity });

    /// <summary>Whether the validation parameters name the issuer (set with the first remembered token; they never change).</summary>
    private volatile bool _issuerConfigured;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var key = CacheKey(token, validationParameters.ValidIssuer is not null, http.HttpContext);
        if (TryGet(key) is { } known)
        {
            return new TokenValidationResult
            {
                IsValid = true,
                SecurityToken = known.SecurityToken,
                ClaimsIdentity = known.ClaimsIdentity.Clone(),
                Issuer = known.Issuer,
                TokenType = known.TokenType,
            };
        }
        var result = await _inner.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken.ValidTo > clock.UtcNow())
        {
            _issuerConfigured = validationParameters.ValidIssuer is not null;
            var expires = new DateTimeOffset(result.SecurityToken.ValidTo, TimeSpan.Zero);
            var cap = clock.GetUtcNow() + MaxAge;
            _valid.Set(key, result, new MemoryCacheEntryOptions { AbsoluteExpiration = expires < cap ? expires : cap, Size = 1 });
        }
        return result;
    }

    /// <summary>
    /// A copy of the identity of <paramref name="token"/> if it passed validation here and has not expired, for
    /// <see cref="BearerAuthentication"/>'s quick path (which still checks revocation); otherwise null.
    /// </summary>
    public ClaimsIdentity? TryGetIdentity(string token, HttpContext context) =>
        TryGet(CacheKey(token, _issuerConfigured, context))?.ClaimsIdentity.Clone();

    private TokenValidationResult? TryGet(string key) =>
        _valid.TryGetValue(key, out TokenValidationResult? known) && known!.SecurityToken.ValidTo > clock.UtcNow() ? known : null;

    public override SecurityToken ReadToken(string token) => _inner.ReadToken(token);

    public void Dispose() => _valid.Dispose();

    /// <summary>Without a configured issuer a token is valid only on the host it was issued for.</summary>
    private static string CacheKey(string token, bool issuerConfigured, HttpContext? context)
    {
        if (issuerConfigured || context is null)
        {
            return token;
        }
        var request = context.Request;
        return $"{request.Scheme}://{request.Host}{request.PathBase}|{token}";
    }
}
