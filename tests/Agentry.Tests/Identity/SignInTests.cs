using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Identity;

public sealed class SignInTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task The_bootstrap_administrator_signs_in_and_owns_the_default_workspace()
    {
        var me = await (await fixture.Client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();

        Assert.Equal(AgentryApp.AdminEmail, me.Email);
        Assert.True(me.IsPlatformAdmin);
        var membership = Assert.Single(me.Memberships, m => m.WorkspaceSlug == "default");
        Assert.Equal(Roles.Owner, membership.Role);
    }

    [Fact]
    public async Task A_wrong_password_and_an_unknown_email_are_refused_alike()
    {
        var (_, email, _) = await _app.CreateUserAsync();

        var wrongPassword = await TokenAsync(email, "not-the-password");
        var unknownEmail = await TokenAsync("nobody@agentry.test", "not-the-password");

        Assert.Equal(HttpStatusCode.BadRequest, wrongPassword.StatusCode);
        Assert.Equal(await ErrorAsync(wrongPassword), await ErrorAsync(unknownEmail));
        Assert.Equal("invalid_grant", (await ErrorAsync(wrongPassword)).Error);
    }

    [Fact]
    public async Task Repeated_wrong_passwords_lock_the_account_even_against_the_right_one()
    {
        var (_, email, password) = await _app.CreateUserAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await TokenAsync(email, "wrong-password")).StatusCode);
        }

        var locked = await TokenAsync(email, password);

        Assert.Equal(HttpStatusCode.BadRequest, locked.StatusCode);
        Assert.Contains("try again after", (await ErrorAsync(locked)).Description);
    }

    [Fact]
    public async Task Refresh_tokens_rotate_and_a_replayed_one_revokes_the_chain()
    {
        var (userId, email, password) = await _app.CreateUserAsync();
        var first = await AgentryApp.RequestTokensAsync(_app.Client(), email, password, "offline_access");
        var r1 = first.GetProperty("refresh_token").GetString()!;

        var second = await RefreshAsync(r1);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var body = JsonDocument.Parse(await second.Content.ReadAsStringAsync()).RootElement;
        var r2 = body.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(r1, r2);
        var client = _app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me")).StatusCode);

        var replay = await RefreshAsync(r1);
        Assert.Equal("invalid_grant", (await ErrorAsync(replay)).Error);
        var afterReplay = await RefreshAsync(r2);
        Assert.Equal("invalid_grant", (await ErrorAsync(afterReplay)).Error);
        // The chain's access tokens die with it, though they have not expired.
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me")).StatusCode);
        var audit = await (await fixture.Client.GetAsync($"/api/v1/audit?action={AuditActions.TokenReuseDetected}&actorUserId={userId}"))
            .ReadAsync<Page<AuditEventResponse>>();
        Assert.Equal(AuditOutcomes.Denied, Assert.Single(audit.Items).Outcome);
    }

    [Fact]
    public async Task Signing_out_revokes_the_refresh_token_and_its_access_tokens()
    {
        var (_, email, password) = await _app.CreateUserAsync();
        var tokens = await AgentryApp.RequestTokensAsync(_app.Client(), email, password, "offline_access");
        var client = _app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me")).StatusCode);

        var revoke = await _app.Client().PostAsync("/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "agentry-cli", ["token"] = tokens.GetProperty("refresh_token").GetString()!,
        }));

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Equal("invalid_grant", (await ErrorAsync(await RefreshAsync(tokens.GetProperty("refresh_token").GetString()!))).Error);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me")).StatusCode);
    }

    [Fact]
    public async Task Requests_without_a_valid_token_get_a_401_problem()
    {
        var anonymous = _app.Client();
        await (await anonymous.GetAsync("/api/v1/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        var garbage = _app.Client();
        garbage.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not.a.token");
        await (await garbage.GetAsync("/api/v1/workspaces")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task Discovery_and_jwks_publish_the_signing_key_and_only_its_public_part()
    {
        var client = _app.Client();
        var discovery = JsonDocument.Parse(await client.GetStringAsync("/.well-known/openid-configuration")).RootElement;
        var jwks = JsonDocument.Parse(await client.GetStringAsync(new Uri(discovery.GetProperty("jwks_uri").GetString()!).PathAndQuery)).RootElement;
        var token = (await AgentryApp.RequestTokensAsync(client, AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;
        var header = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(Pad(token.Split('.')[0])))).RootElement;

        Assert.Equal("RS256", header.GetProperty("alg").GetString());
        Assert.Equal("at+jwt", header.GetProperty("typ").GetString());
        var key = Assert.Single(jwks.GetProperty("keys").EnumerateArray(), k => k.GetProperty("kid").GetString() == header.GetProperty("kid").GetString());
        Assert.Equal("RSA", key.GetProperty("kty").GetString());
        foreach (var secret in new[] { "d", "p", "q", "dp", "dq", "qi", "k" })
        {
            Assert.False(key.TryGetProperty(secret, out _), $"JWKS leaks the private parameter '{secret}'");
        }
    }

    private Task<HttpResponseMessage> TokenAsync(string email, string password) =>
        _app.Client().PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = email, ["password"] = password,
        }));

    private Task<HttpResponseMessage> RefreshAsync(string refreshToken) =>
        _app.Client().PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["client_id"] = "agentry-cli", ["refresh_token"] = refreshToken,
        }));

    private static async Task<(string? Error, string? Description)> ErrorAsync(HttpResponseMessage response)
    {
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return (body.GetProperty("error").GetString(), body.TryGetProperty("error_description", out var d) ? d.GetString() : null);
    }

    private static string Pad(string base64Url)
    {
        var s = base64Url.Replace('-', '+').Replace('_', '/');
        return s + new string('=', (4 - s.Length % 4) % 4);
    }
}
