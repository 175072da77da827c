using System.Net;
using System.Text;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;

namespace Agentry.Tests.Identity;

/// <summary>Who may see and change a workspace: another workspace is invisible (404), too weak a role is 403.</summary>
public sealed class WorkspaceAccessTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;
    private readonly HttpClient _admin = fixture.Client;

    [Fact]
    public async Task Non_members_cannot_see_or_touch_a_workspace()
    {
        var workspace = await CreateWorkspaceAsync();
        var outsider = await _app.UserClientAsync();

        await (await outsider.GetAsync($"/api/v1/workspaces/{workspace.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await outsider.PatchAsync($"/api/v1/workspaces/{workspace.Id}", Json(new { name = "mine" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await outsider.DeleteAsync($"/api/v1/workspaces/{workspace.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        var listed = await (await outsider.GetAsync("/api/v1/workspaces")).ReadAsync<Page<WorkspaceResponse>>();
        Assert.DoesNotContain(listed.Items, w => w.Id == workspace.Id);
    }

    [Fact]
    public async Task Anonymous_requests_are_refused_before_their_body_is_read()
    {
        var anonymous = _app.Client();
        var malformed = new StringContent("{ not json", Encoding.UTF8, "application/json");

        var response = await anonymous.PostAsync("/api/v1/agents", malformed);

        // 401 with the bearer challenge, not the 400 that parsing the body would give.
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task A_key_without_the_scope_is_refused_before_its_body_is_read()
    {
        var workspace = await CreateWorkspaceAsync();
        var key = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(_admin, workspace.Id, ApiKeyScopes.AgentsRead));

        await (await key.PostAsync("/api/v1/agents", new StringContent("{ not json", Encoding.UTF8, "application/json")))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Theory]
    [InlineData(Roles.Viewer, HttpStatusCode.OK, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden)]
    [InlineData(Roles.Member, HttpStatusCode.OK, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden)]
    [InlineData(Roles.Admin, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.Forbidden)]
    [InlineData(Roles.Owner, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.NoContent)]
    public async Task Each_role_gets_exactly_its_rights(string role, HttpStatusCode read, HttpStatusCode update, HttpStatusCode delete)
    {
        var workspace = await CreateWorkspaceAsync();
        var user = await _app.UserClientAsync(workspace.Id, role);

        Assert.Equal(read, (await user.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
        Assert.Contains((await (await user.GetAsync("/api/v1/workspaces")).ReadAsync<Page<WorkspaceResponse>>()).Items, w => w.Id == workspace.Id);
        Assert.Equal(update, (await user.PatchAsync($"/api/v1/workspaces/{workspace.Id}", Json(new { description = role }))).StatusCode);
        Assert.Equal(delete, (await user.DeleteAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
    }

    [Fact]
    public async Task Only_platform_administrators_create_workspaces_and_the_creator_owns_it()
    {
        var user = await _app.UserClientAsync();
        await (await user.PostJsonAsync("/api/v1/workspaces", new { name = "n", slug = NewSlug() })).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        var created = await CreateWorkspaceAsync();
        var me = await (await _admin.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        Assert.Equal(Roles.Owner, Assert.Single(me.Memberships, m => m.WorkspaceId == created.Id).Role);
    }

    private async Task<WorkspaceResponse> CreateWorkspaceAsync() =>
        await (await _admin.PostJsonAsync("/api/v1/workspaces", new { name = "team", slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);

    private static string NewSlug() => "ws-" + Guid.NewGuid().ToString("N")[..16];

    private static StringContent Json(object body) => new(System.Text.Json.JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
