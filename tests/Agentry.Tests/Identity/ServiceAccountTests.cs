using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Identity;

/// <summary>Service accounts: OAuth client credentials bound to one workspace, with scopes.</summary>
public sealed class ServiceAccountTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;
    private readonly HttpClient _admin = fixture.Client;

    [Fact]
    public async Task A_service_account_signs_in_with_client_credentials_and_acts_in_its_workspace_with_its_scopes()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        var (clientId, secret) = await CreateAsync(workspace, ApiKeyScopes.AgentsRead, ApiKeyScopes.TasksWrite);

        var token = await TokenAsync(clientId, secret);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        var body = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement;
        Assert.False(body.TryGetProperty("refresh_token", out _));
        var client = Bearer(body.GetProperty("access_token").GetString()!);

        var me = await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        Assert.Equal("serviceAccount", me.Kind);
        Assert.Equal(workspace, Assert.Single(me.Memberships).WorkspaceId);
        Assert.Equal(Roles.Member, me.Memberships[0].Role);
        Assert.Equal([ApiKeyScopes.AgentsRead, ApiKeyScopes.TasksWrite], me.Scopes!.Order());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/api/v1/workspaces/{workspace}")).StatusCode);
        await (await client.GetAsync($"/api/v1/workspaces/{other}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.GetAsync($"/api/v1/workspaces/{workspace}/members")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await client.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "k", scopes = new[] { "chat" } }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        // Asking for a scope it does not have grants nothing more.
        var narrowed = await TokenAsync(clientId, secret, $"{ApiKeyScopes.AgentsRead} {ApiKeyScopes.Admin}");
        Assert.NotEqual(HttpStatusCode.OK, narrowed.StatusCode);
    }

    [Fact]
    public async Task A_wrong_secret_is_refused_and_the_secret_is_never_shown_again()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var (clientId, secret) = await CreateAsync(workspace, ApiKeyScopes.Chat);

        var wrong = await TokenAsync(clientId, secret[..^1] + (secret[^1] == 'a' ? 'b' : 'a'));
        Assert.Equal("invalid_client", JsonDocument.Parse(await wrong.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        var listed = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/service-accounts")).Content.ReadAsStringAsync();
        Assert.Contains(clientId, listed);
        Assert.DoesNotContain(secret, listed);
    }

    [Fact]
    public async Task Introspection_reports_a_token_active_until_the_account_is_deleted_which_refuses_its_tokens()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var (clientId, secret) = await CreateAsync(workspace, ApiKeyScopes.AgentsRead);
        var token = JsonDocument.Parse(await (await TokenAsync(clientId, secret)).Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;

        var active = await IntrospectAsync(clientId, secret, token);
        Assert.True(active.GetProperty("active").GetBoolean());
        Assert.Equal(clientId, active.GetProperty("client_id").GetString());

        var accounts = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/service-accounts")).ReadAsync<JsonElement>();
        var id = accounts.GetProperty("items")[0].GetProperty("id").GetGuid();
        var delete = await _admin.DeleteAsync($"/api/v1/workspaces/{workspace}/service-accounts/{id}");
        Assert.True(delete.StatusCode == HttpStatusCode.NoContent, await delete.Content.ReadAsStringAsync());

        await (await Bearer(token).GetAsync("/api/v1/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.NotEqual(HttpStatusCode.OK, (await TokenAsync(clientId, secret)).StatusCode);
        var deleted = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/service-accounts/{id}")).ReadAsync<JsonElement>();
        Assert.NotEqual(JsonValueKind.Null, deleted.GetProperty("disabledAt").ValueKind);
    }

    private async Task<(string ClientId, string Secret)> CreateAsync(Guid workspace, params string[] scopes)
    {
        var created = await (await _admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/service-accounts", new { name = "robot", scopes }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        return (created.GetProperty("clientId").GetString()!, created.GetProperty("clientSecret").GetString()!);
    }

    private Task<HttpResponseMessage> TokenAsync(string clientId, string secret, string? scope = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret };
        if (scope is not null)
        {
            form["scope"] = scope;
        }
        return _app.Client().PostAsync("/connect/token", new FormUrlEncodedContent(form));
    }

    private async Task<JsonElement> IntrospectAsync(string clientId, string secret, string token)
    {
        var response = await _app.Client().PostAsync("/connect/introspect", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = clientId, ["client_secret"] = secret, ["token"] = token,
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement;
    }

    private HttpClient Bearer(string token)
    {
        var client = _app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
