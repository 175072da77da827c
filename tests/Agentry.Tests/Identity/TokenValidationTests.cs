using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Tests.Identity;

/// <summary>
/// One test per kind of bad access token. Each is made from a real token's claims, changed in exactly
/// one way and signed again; the unchanged re-signed token is accepted, so a refusal is due to that change.
/// </summary>
public sealed class TokenValidationTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task The_re_signed_original_is_accepted() =>
        Assert.Equal(HttpStatusCode.OK, await CallAsync(await ForgeAsync(_ => { })));

    [Fact]
    public async Task Expired_tokens_are_refused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(c =>
        {
            c["iat"] = Epoch(-3600);
            c["nbf"] = Epoch(-3600);
            c["exp"] = Epoch(-600);
        })));

    [Fact]
    public async Task Tokens_not_yet_valid_are_refused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(c =>
        {
            c["nbf"] = Epoch(1800);
            c["exp"] = Epoch(3600);
        })));

    [Fact]
    public async Task A_wrong_issuer_is_refused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(c => c["iss"] = "https://evil.example/")));

    [Fact]
    public async Task A_wrong_audience_is_refused() =>
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(c => c["aud"] = "another-api")));

    [Fact]
    public async Task A_key_the_server_does_not_know_is_refused()
    {
        using var rsa = RSA.Create(2048);
        var unknown = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "unknown-kid" }, SecurityAlgorithms.RsaSha256);

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(_ => { }, unknown)));
    }

    [Fact]
    public async Task Hmac_signed_with_the_public_key_is_refused()
    {
        var key = (RsaSecurityKey)_app.Services.GetRequiredService<KeyRing>().SigningKeys[0];
        var publicKey = key.Rsa.ExportSubjectPublicKeyInfo();
        var hmac = new SigningCredentials(new SymmetricSecurityKey(publicKey) { KeyId = key.KeyId }, SecurityAlgorithms.HmacSha256);

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(_ => { }, hmac)));
    }

    [Fact]
    public async Task A_refresh_token_is_not_an_access_token()
    {
        var (_, email, password) = await _app.CreateUserAsync();
        var tokens = await AgentryApp.RequestTokensAsync(_app.Client(), email, password, "offline_access");

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(tokens.GetProperty("refresh_token").GetString()!));
    }

    [Fact]
    public async Task A_token_of_a_deleted_user_is_refused()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(await ForgeAsync(c => c["sub"] = Guid.CreateVersion7().ToString())));
    }

    [Fact]
    public async Task A_token_of_another_type_is_refused()
    {
        var real = (await AgentryApp.RequestTokensAsync(_app.Client(), AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;
        var claims = JsonSerializer.Deserialize<Dictionary<string, object>>(Base64UrlEncoder.Decode(real.Split('.')[1]))!;
        var credentials = new SigningCredentials(_app.Services.GetRequiredService<KeyRing>().SigningKeys[0], SecurityAlgorithms.RsaSha256);
        var idToken = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }
            .CreateToken(new SecurityTokenDescriptor { Claims = claims, SigningCredentials = credentials, TokenType = "JWT" });

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(idToken));
    }

    [Fact]
    public async Task A_revoked_access_token_is_refused()
    {
        var (_, email, password) = await _app.CreateUserAsync();
        var token = (await AgentryApp.RequestTokensAsync(_app.Client(), email, password)).GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, await CallAsync(token));

        var revoke = await _app.Client().PostAsync("/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "agentry-cli", ["token"] = token, ["token_type_hint"] = "access_token",
        }));

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync(token));
    }

    [Fact]
    public async Task An_unsigned_token_claiming_alg_none_is_refused()
    {
        var parts = (await RealTokenAsync()).Split('.');
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"at+jwt"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync($"{header}.{parts[1]}."));
    }

    [Fact]
    public async Task A_token_with_its_signature_stripped_is_refused()
    {
        var parts = (await RealTokenAsync()).Split('.');

        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync($"{parts[0]}.{parts[1]}."));
    }

    [Fact]
    public async Task A_token_with_tampered_claims_and_the_original_signature_is_refused()
    {
        var parts = (await RealTokenAsync()).Split('.');
        var claims = Base64UrlEncoder.Decode(parts[1]).Replace(AgentryApp.AdminEmail, "someone@else.test");

        Assert.Equal(HttpStatusCode.OK, await CallAsync(string.Join('.', parts)));
        Assert.Equal(HttpStatusCode.Unauthorized, await CallAsync($"{parts[0]}.{Base64UrlEncoder.Encode(claims)}.{parts[2]}"));
    }

    [Fact]
    public async Task A_token_accepted_on_its_host_is_refused_on_another_even_when_remembered()
    {
        var token = await RealTokenAsync();
        Assert.Equal(HttpStatusCode.OK, await CallAsync(token));
        Assert.Equal(HttpStatusCode.OK, await CallAsync(token));

        var elsewhere = _app.Client();
        elsewhere.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        elsewhere.DefaultRequestHeaders.Host = "other.example";

        Assert.Equal(HttpStatusCode.Unauthorized, (await elsewhere.GetAsync("/api/v1/workspaces")).StatusCode);
    }

    private async Task<string> RealTokenAsync() =>
        (await AgentryApp.RequestTokensAsync(_app.Client(), AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;

    /// <summary>A real access token's claims, changed by <paramref name="change"/>, signed with the server's key (or another).</summary>
    private async Task<string> ForgeAsync(Action<Dictionary<string, object>> change, SigningCredentials? credentials = null)
    {
        var real = (await AgentryApp.RequestTokensAsync(_app.Client(), AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;
        var payload = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(real.Split('.')[1]))!;
        var claims = payload.ToDictionary(p => p.Key, p => (object)(p.Value.ValueKind switch
        {
            JsonValueKind.Number => p.Value.GetInt64(),
            JsonValueKind.String => p.Value.GetString()!,
            _ => p.Value,
        }));
        change(claims);
        credentials ??= new SigningCredentials(_app.Services.GetRequiredService<KeyRing>().SigningKeys[0], SecurityAlgorithms.RsaSha256);
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        return handler.CreateToken(new SecurityTokenDescriptor { Claims = claims, SigningCredentials = credentials, TokenType = "at+jwt" });
    }

    /// <summary>A workspace route: it needs a valid token and a user that still exists.</summary>
    private async Task<HttpStatusCode> CallAsync(string token)
    {
        var client = _app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await client.GetAsync("/api/v1/workspaces")).StatusCode;
    }

    private static long Epoch(int secondsFromNow) => DateTimeOffset.UtcNow.AddSeconds(secondsFromNow).ToUnixTimeSeconds();
}
