using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Tests.Identity;

/// <summary>
/// Node X, a real OpenID Connect issuer over HTTP (discovery, JWKS, RS256 access tokens), plays the
/// external identity provider; node Y accepts X's access tokens. No test double stands in for either.
/// </summary>
public sealed class ExternalIdentityFixture : IAsyncLifetime
{
    /// <summary>The identity provider, listening on a loopback port.</summary>
    public AgentryApp Provider { get; private set; } = null!;

    /// <summary>A node that maps X's tokens to its users by email.</summary>
    public AgentryApp Node { get; private set; } = null!;

    /// <summary>A client of X (a Kestrel-hosted app starts its server, and hands out a client, once).</summary>
    public HttpClient ProviderClient { get; private set; } = null!;

    /// <summary>X's issuer: its own base URL, as Agentry:Tokens:Issuer is unset there.</summary>
    public string Issuer => Provider.BaseUri.AbsoluteUri;

    public async ValueTask InitializeAsync()
    {
        Provider = AgentryApp.Sqlite(kestrel: true);
        ProviderClient = Provider.Client();
        Node = TrustingProvider();
        await Node.AdminClientAsync();
    }

    /// <summary>A node of its own that accepts X's tokens, configured by <paramref name="extra"/> besides.</summary>
    public AgentryApp TrustingProvider(IReadOnlyDictionary<string, string?>? extra = null) => AgentryApp.Sqlite(new Dictionary<string, string?>
    {
        ["Agentry:ExternalIdentity:Authority"] = Issuer,
        ["Agentry:ExternalIdentity:Audience"] = TokenOptions.Audience,
        ["Agentry:ExternalIdentity:RequireHttpsMetadata"] = "false",
    }.With(extra));

    public async ValueTask DisposeAsync()
    {
        await Node.DisposeAsync();
        ProviderClient.Dispose();
        await Provider.DisposeAsync();
    }
}

public sealed class ExternalIdentityTests(ExternalIdentityFixture fixture) : IClassFixture<ExternalIdentityFixture>
{
    private readonly AgentryApp _provider = fixture.Provider;
    private readonly AgentryApp _node = fixture.Node;

    [Fact]
    public async Task A_provider_user_signs_in_as_the_local_user_with_the_same_email()
    {
        var (_, email, token) = await ProviderTokenAsync();
        var local = await AddUserAsync(_node, email.ToUpperInvariant());

        using var response = await MeAsync(_node, token);

        var me = await ReadAsync(response, HttpStatusCode.OK);
        Assert.Equal("user", me.GetProperty("kind").GetString());
        Assert.Equal(local, me.GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task An_unknown_email_is_refused_with_a_reason()
    {
        var (_, email, token) = await ProviderTokenAsync();

        using var response = await MeAsync(_node, token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = response.Headers.WwwAuthenticate.ToString();
        Assert.Contains("No Agentry user has the email address", challenge);
        Assert.Contains(email, challenge);
    }

    [Fact]
    public async Task With_CreateUsers_an_unknown_user_is_created_without_password_or_memberships()
    {
        await using var node = fixture.TrustingProvider(new Dictionary<string, string?> { ["Agentry:ExternalIdentity:CreateUsers"] = "true" });
        var (_, email, token) = await ProviderTokenAsync();

        using var response = await MeAsync(node, token);

        var me = await ReadAsync(response, HttpStatusCode.OK);
        Assert.Equal(email, me.GetProperty("email").GetString());
        Assert.Equal(0, me.GetProperty("memberships").GetArrayLength());
        await using var scope = node.Services.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<AppDbContext>().Users.SingleAsync(u => u.NormalizedEmail == User.Normalize(email));
        Assert.Equal(me.GetProperty("id").GetGuid(), user.Id);
        Assert.Null(user.PasswordHash);
        // The second request finds the user it created.
        using var again = await MeAsync(node, token);
        Assert.Equal(user.Id, (await ReadAsync(again, HttpStatusCode.OK)).GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task A_token_for_another_audience_is_refused()
    {
        await using var node = fixture.TrustingProvider(new Dictionary<string, string?> { ["Agentry:ExternalIdentity:Audience"] = "another-api" });
        var (_, email, token) = await ProviderTokenAsync();
        await AddUserAsync(node, email);

        using var response = await MeAsync(node, token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_token_naming_the_provider_but_signed_by_another_key_is_refused()
    {
        var (_, email, token) = await ProviderTokenAsync();
        await AddUserAsync(_node, email);
        using var rsa = RSA.Create(2048);
        var claims = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(token.Split('.')[1]))!
            .ToDictionary(c => c.Key, c => (object)(c.Value.ValueKind == JsonValueKind.Number ? c.Value.GetInt64() : c.Value.ValueKind == JsonValueKind.String ? c.Value.GetString()! : c.Value));
        var forged = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "forged" }, SecurityAlgorithms.RsaSha256),
            TokenType = "at+jwt",
        });

        Assert.Equal(HttpStatusCode.OK, (await MeAsync(_node, token)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await MeAsync(_node, forged)).StatusCode);
    }

    [Fact]
    public async Task An_unreachable_provider_is_an_outage_not_a_bad_token()
    {
        const string deadIssuer = "http://127.0.0.1:1/";
        await using var node = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:ExternalIdentity:Authority"] = deadIssuer,
            ["Agentry:ExternalIdentity:Audience"] = TokenOptions.Audience,
            ["Agentry:ExternalIdentity:RequireHttpsMetadata"] = "false",
        });
        using var rsa = RSA.Create(2048);
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["iss"] = deadIssuer, ["sub"] = "someone", ["aud"] = TokenOptions.Audience },
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "k" }, SecurityAlgorithms.RsaSha256),
        });

        var response = await MeAsync(node, token);

        await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task The_node_s_own_tokens_and_keys_still_work()
    {
        var admin = await _node.AdminClientAsync();
        var me = await ReadAsync(await admin.GetAsync("/api/v1/me"), HttpStatusCode.OK);
        Assert.Equal(AgentryApp.AdminEmail, me.GetProperty("email").GetString());

        var key = await AgentryApp.CreateApiKeyAsync(admin, await _node.CreateWorkspaceAsync(), ApiKeyScopes.AgentsRead);
        Assert.Equal(HttpStatusCode.OK, (await _node.KeyClient(key).GetAsync("/api/v1/me")).StatusCode);
    }

    [Fact]
    public async Task A_disabled_local_user_is_refused()
    {
        var (_, email, token) = await ProviderTokenAsync();
        await AddUserAsync(_node, email, disabled: true);

        using var response = await MeAsync(_node, token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task By_subject_the_link_decides_and_the_email_is_ignored()
    {
        await using var node = fixture.TrustingProvider(new Dictionary<string, string?> { ["Agentry:ExternalIdentity:MapBy"] = "subject" });
        var (subject, email, token) = await ProviderTokenAsync();
        // A local user with the token's email is not the one it signs in as.
        await AddUserAsync(node, email);
        var linked = await AddUserAsync(node, $"linked-{Guid.NewGuid():N}@agentry.test");
        await using (var scope = node.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.ExternalLogins.Add(new ExternalLogin { Id = Guid.CreateVersion7(), Issuer = fixture.Issuer, Subject = subject.ToString(), UserId = linked, CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }

        using var response = await MeAsync(node, token);

        Assert.Equal(linked, (await ReadAsync(response, HttpStatusCode.OK)).GetProperty("id").GetGuid());
        var (_, unlinkedEmail, unlinked) = await ProviderTokenAsync();
        await AddUserAsync(node, unlinkedEmail);
        using var refused = await MeAsync(node, unlinked);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("No Agentry user is linked", refused.Headers.WwwAuthenticate.ToString());
    }

    /// <summary>The validator that runs at start (the process tests show a bad value stopping the program).</summary>
    [Theory]
    [InlineData("Audience", null, "Agentry:ExternalIdentity:Audience")]
    [InlineData("RequireHttpsMetadata", "true", "Agentry:ExternalIdentity:Authority")]
    [InlineData("MapBy", "name", "Agentry:ExternalIdentity:MapBy")]
    [InlineData("AllowedAlgorithms", "HS256", "Agentry:ExternalIdentity:AllowedAlgorithms")]
    [InlineData("EmailClaim", "", "Agentry:ExternalIdentity:EmailClaim")]
    public void A_bad_setting_is_refused_naming_the_key(string setting, string? value, string key)
    {
        var options = new ExternalIdentityOptions { Authority = new Uri("http://idp.example/"), Audience = "agentry-api", RequireHttpsMetadata = false };
        Assert.True(new ExternalIdentityOptionsValidator().Validate(null, options).Succeeded);
        switch (setting)
        {
            case "Audience": options.Audience = value; break;
            case "RequireHttpsMetadata": options.RequireHttpsMetadata = bool.Parse(value!); break;
            case "MapBy": options.MapBy = value!; break;
            case "AllowedAlgorithms": options.AllowedAlgorithms = [value!]; break;
            case "EmailClaim": options.EmailClaim = value!; break;
        }

        var result = new ExternalIdentityOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(key, result.FailureMessage);
    }

    /// <summary>A new user of the provider and an access token it issued them.</summary>
    private async Task<(Guid Subject, string Email, string Token)> ProviderTokenAsync()
    {
        var (id, email, password) = await _provider.CreateUserAsync();
        var tokens = await AgentryApp.RequestTokensAsync(fixture.ProviderClient, email, password);
        return (id, email, tokens.GetProperty("access_token").GetString()!);
    }

    private static async Task<Guid> AddUserAsync(AgentryApp app, string email, bool disabled = false)
    {
        await app.BootstrappedAsync();
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var user = new User
        {
            Id = Guid.CreateVersion7(), Email = email, NormalizedEmail = User.Normalize(email), DisplayName = "Local user",
            IsDisabled = disabled, CreatedAt = DateTime.UtcNow,
        };
        db.Users.Add(user);
        await db.SaveChangesAsync();
        return user.Id;
    }

    private static Task<HttpResponseMessage> MeAsync(AgentryApp app, string token)
    {
        var client = app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client.GetAsync("/api/v1/me");
    }

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{response.StatusCode} {response.Headers.WwwAuthenticate}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }
}
