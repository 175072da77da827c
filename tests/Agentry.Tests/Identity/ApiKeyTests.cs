using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Identity;

public sealed class ApiKeyTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;
    private readonly HttpClient _admin = fixture.Client;

    [Fact]
    public async Task A_key_is_shown_once_stored_as_a_hash_and_authenticates_as_its_workspace()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var created = await (await _admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "ci", scopes = new[] { "agents:read" } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        var key = created.GetProperty("key").GetString()!;
        var id = created.GetProperty("id").GetGuid();

        Assert.Matches("^agt_[0-9A-Za-z]{46}$", key);
        Assert.StartsWith(created.GetProperty("prefix").GetString()!, key);
        var listed = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/api-keys")).Content.ReadAsStringAsync();
        var single = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/api-keys/{id}")).Content.ReadAsStringAsync();
        Assert.DoesNotContain(key, listed);
        Assert.DoesNotContain(key, single);
        Assert.Contains(id.ToString(), listed);
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var stored = await scope.ServiceProvider.GetRequiredService<AppDbContext>().ApiKeys.SingleAsync(k => k.Id == id);
            Assert.Equal(ApiKeySecret.Hash(key), stored.Hash);
            Assert.Null(stored.LastUsedAt);
        }

        var client = _app.KeyClient(key);
        var me = await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        Assert.Equal("apiKey", me.Kind);
        Assert.Equal(id, me.Id);
        Assert.Equal(workspace, Assert.Single(me.Memberships).WorkspaceId);
        Assert.Equal(Roles.Viewer, me.Memberships[0].Role);
        var visible = await (await client.GetAsync("/api/v1/workspaces")).ReadAsync<Page<WorkspaceResponse>>();
        Assert.Equal(workspace, Assert.Single(visible.Items).Id);
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var stored = await scope.ServiceProvider.GetRequiredService<AppDbContext>().ApiKeys.SingleAsync(k => k.Id == id);
            Assert.NotNull(stored.LastUsedAt);
        }
    }

    [Fact]
    public async Task A_key_sees_nothing_outside_its_workspace_and_nothing_beyond_its_scopes()
    {
        var mine = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        var reader = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(_admin, mine, "agents:read", "tasks:write"));

        await (await reader.GetAsync($"/api/v1/workspaces/{other}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await reader.GetAsync($"/api/v1/workspaces/{other}/members")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var lacking = await (await reader.GetAsync($"/api/v1/workspaces/{mine}/members")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Contains("admin", lacking.GetProperty("detail").GetString());
        await (await reader.PatchAsync($"/api/v1/workspaces/{mine}", HttpAssertions.Json(new { name = "x" }))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await reader.GetAsync("/api/v1/users")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await reader.PostJsonAsync("/api/v1/workspaces", new { name = "n", slug = "from-a-key" })).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        var admin = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(_admin, mine, "admin"));
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/workspaces/{mine}/members")).StatusCode);
        await (await admin.GetAsync($"/api/v1/workspaces/{other}/members")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await admin.PostJsonAsync($"/api/v1/workspaces/{mine}/api-keys", new { name = "child", scopes = new[] { "admin" } }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Revoked_expired_unknown_and_mistyped_keys_are_refused()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var key = await AgentryApp.CreateApiKeyAsync(_admin, workspace, "agents:read");
        var client = _app.KeyClient(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me")).StatusCode);
        var id = (await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>()).Id;

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/workspaces/{workspace}/api-keys/{id}")).StatusCode);
        await (await client.GetAsync("/api/v1/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/workspaces/{workspace}/api-keys/{id}")).StatusCode);
        var revoked = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/api-keys/{id}")).ReadAsync<JsonElement>();
        Assert.NotEqual(JsonValueKind.Null, revoked.GetProperty("revokedAt").ValueKind);
        var audit = await (await _admin.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=apikey.")).ReadAsync<Page<AuditEventResponse>>();
        Assert.Equal([AuditActions.ApiKeyRevoked, AuditActions.ApiKeyCreated], audit.Items.Where(e => e.Target == AuditTargets.ApiKey(id)).Select(e => e.Action));
        Assert.DoesNotContain(key, JsonSerializer.Serialize(audit));

        var expiring = await AgentryApp.CreateApiKeyAsync(_admin, workspace, "agents:read");
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var hash = ApiKeySecret.Hash(expiring);
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var stored = await db.ApiKeys.SingleAsync(k => k.Hash == hash);
            db.Entry(stored).Property(k => k.ExpiresAt).CurrentValue = DateTime.UtcNow.AddSeconds(-1);
            await db.SaveChangesAsync();
        }
        await (await _app.KeyClient(expiring).GetAsync("/api/v1/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        var unknown = ApiKeySecret.Create();
        var mistyped = key[..^7] + (key[^7] == 'a' ? 'b' : 'a') + key[^6..];
        foreach (var wrong in new[] { unknown, mistyped, key[..^1], "agt_" })
        {
            var response = await _app.KeyClient(wrong).GetAsync("/api/v1/me");
            await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
            Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
        Assert.False(ApiKeySecret.IsWellFormed(mistyped));
    }

    [Fact]
    public async Task Only_workspace_admins_manage_keys_and_requests_are_validated()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var member = await _app.UserClientAsync(workspace, Roles.Member);
        var outsider = await _app.UserClientAsync();
        var body = new { name = "k", scopes = new[] { "chat" } };

        await (await member.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", body)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await member.GetAsync($"/api/v1/workspaces/{workspace}/api-keys")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await outsider.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", body)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");

        var admin = await _app.UserClientAsync(workspace, Roles.Admin);
        var unknownScope = await (await admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "k", scopes = new[] { "root" } }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(unknownScope.GetProperty("errors").TryGetProperty("scopes", out _));
        var past = await (await admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "k", scopes = new[] { "chat" }, expiresAt = DateTime.UtcNow.AddDays(-1) }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(past.GetProperty("errors").TryGetProperty("expiresAt", out _));
        await (await admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", new { name = "", scopes = Array.Empty<string>() }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", body)).StatusCode);
    }

    [Fact]
    public async Task Keys_are_listed_newest_first_a_page_at_a_time()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        for (var i = 0; i < 5; i++)
        {
            await AgentryApp.CreateApiKeyAsync(_admin, workspace, "chat");
        }

        var seen = new List<Guid>();
        string? cursor = null;
        do
        {
            var page = await (await _admin.GetAsync($"/api/v1/workspaces/{workspace}/api-keys?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}"))
                .ReadAsync<Page<ApiKeyResponse>>();
            Assert.True(page.Items.Count <= 2);
            seen.AddRange(page.Items.Select(k => k.Id));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        Assert.Equal(5, seen.Distinct().Count());
        Assert.Equal(seen.OrderByDescending(id => id).ToList(), seen);
    }

    [Fact]
    public async Task Server_owned_fields_sent_by_a_client_are_ignored()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        var forgedId = Guid.CreateVersion7();
        var body = new
        {
            name = "mass", scopes = new[] { "chat" }, id = forgedId, workspaceId = other, createdBy = Guid.Empty,
            createdAt = "2000-01-01T00:00:00Z", revokedAt = "2000-01-01T00:00:00Z", key = "agt_chosen", prefix = "agt_chosen",
        };

        var created = await (await _admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/api-keys", body)).ReadAsync<JsonElement>(HttpStatusCode.Created);

        Assert.NotEqual(forgedId, created.GetProperty("id").GetGuid());
        Assert.Equal(workspace, created.GetProperty("workspaceId").GetGuid());
        Assert.NotEqual(Guid.Empty, created.GetProperty("createdBy").GetGuid());
        Assert.True(created.GetProperty("createdAt").GetDateTime() > DateTime.UtcNow.AddMinutes(-5));
        Assert.False(created.TryGetProperty("revokedAt", out var revokedAt) && revokedAt.ValueKind != JsonValueKind.Null);
        Assert.NotEqual("agt_chosen", created.GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await _app.KeyClient(created.GetProperty("key").GetString()!).GetAsync("/api/v1/me")).StatusCode);
    }
}
