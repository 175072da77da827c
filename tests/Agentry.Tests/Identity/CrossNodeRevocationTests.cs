using System.Net;
using System.Net.Http.Headers;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Identity;

/// <summary>
/// Two nodes sharing PostgreSQL and Redis. Each credential is first used on node B (so B holds it as
/// valid in memory), then revoked on node A; B must refuse it within a second.
/// </summary>
public sealed class CrossNodeRevocationTests : IAsyncLifetime
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(1);

    private PostgresDatabase _database = null!;
    private AgentryApp _nodeA = null!;
    private AgentryApp _nodeB = null!;
    private HttpClient _adminA = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync();
        var settings = Settings.Postgres(_database.ConnectionString).With(new Dictionary<string, string?>
        {
            ["Agentry:Cache:Redis"] = TestServers.Redis,
            ["Agentry:Cache:InstanceName"] = _database.Name,
        });
        _nodeA = new AgentryApp(settings);
        _nodeB = new AgentryApp(settings);
        _adminA = await _nodeA.AdminClientAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task An_api_key_revoked_on_one_node_is_refused_on_the_other_within_a_second()
    {
        var workspace = await _nodeA.CreateWorkspaceAsync();
        var key = await AgentryApp.CreateApiKeyAsync(_adminA, workspace, ApiKeyScopes.AgentsRead);
        var onB = _nodeB.KeyClient(key);
        var me = await (await onB.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();

        Assert.Equal(HttpStatusCode.NoContent, (await _adminA.DeleteAsync($"/api/v1/workspaces/{workspace}/api-keys/{me.Id}")).StatusCode);

        Assert.True(await RefusedWithinAsync(onB), "node B still accepted the revoked key after 1 s");
    }

    [Fact]
    public async Task An_access_token_revoked_on_one_node_is_refused_on_the_other_within_a_second()
    {
        var (_, email, password) = await _nodeA.CreateUserAsync();
        var token = (await AgentryApp.RequestTokensAsync(_nodeA.Client(), email, password)).GetProperty("access_token").GetString()!;
        var onB = _nodeB.Client();
        onB.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me")).StatusCode);

        var revoke = await _nodeA.Client().PostAsync("/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "agentry-cli", ["token"] = token,
        }));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);

        Assert.True(await RefusedWithinAsync(onB), "node B still accepted the revoked access token after 1 s");
    }

    [Fact]
    public async Task A_user_disabled_on_one_node_is_refused_on_the_other_within_a_second()
    {
        var (id, email, password) = await _nodeA.CreateUserAsync();
        var onB = await _nodeB.SignedInClientAsync(email, password);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me")).StatusCode);

        var disable = await _adminA.PatchAsync($"/api/v1/users/{id}", HttpAssertions.Json(new { isDisabled = true }));
        Assert.Equal(HttpStatusCode.OK, disable.StatusCode);

        Assert.True(await RefusedWithinAsync(onB), "node B still accepted the disabled user's token after 1 s");
    }

    private static Task<bool> RefusedWithinAsync(HttpClient client) =>
        HttpAssertions.EventuallyAsync(async () => (await client.GetAsync("/api/v1/me")).StatusCode == HttpStatusCode.Unauthorized, Within);
}
