using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;

namespace Agentry.Tests.Identity;

public sealed class UserManagementTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;
    private readonly HttpClient _admin = fixture.Client;

    [Fact]
    public async Task An_administrator_creates_a_user_who_signs_in_and_joins_a_workspace()
    {
        var email = $"new-{Guid.NewGuid():N}@agentry.test";
        var user = await (await _admin.PostJsonAsync("/api/v1/users", new { email, displayName = "New Person", password = "a-long-password-1" }))
            .ReadAsync<UserResponse>(HttpStatusCode.Created);
        var client = await _app.SignedInClientAsync(email, "a-long-password-1");
        var workspace = await (await _admin.PostJsonAsync("/api/v1/workspaces", new { name = "shared", slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
        Assert.DoesNotContain((await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>()).Memberships, m => m.WorkspaceId == workspace.Id);

        var member = await (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{workspace.Id}/members/{user.Id}", new { role = "member" }))
            .ReadAsync<MemberResponse>();

        Assert.Equal(("member", email), (member.Role, member.Email));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
        // /me is cached; joining a workspace shows at once.
        Assert.Contains((await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>()).Memberships, m => m.WorkspaceId == workspace.Id);
        var members = (await (await client.GetAsync($"/api/v1/workspaces/{workspace.Id}/members")).ReadAsync<Page<MemberResponse>>()).Items;
        Assert.Equal(2, members.Count);

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/workspaces/{workspace.Id}/members/{user.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
        Assert.DoesNotContain((await (await client.GetAsync("/api/v1/me")).ReadAsync<MeResponse>()).Memberships, m => m.WorkspaceId == workspace.Id);
    }

    [Fact]
    public async Task A_disabled_user_is_refused_at_once_with_a_token_still_unexpired()
    {
        var (id, email, password) = await _app.CreateUserAsync();
        var client = await _app.SignedInClientAsync(email, password);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/workspaces")).StatusCode);

        (await _admin.PatchAsJsonAsync($"/api/v1/users/{id}", new { isDisabled = true })).EnsureSuccessStatusCode();

        await (await client.GetAsync("/api/v1/workspaces")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        var signIn = await _app.Client().PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = email, ["password"] = password,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, signIn.StatusCode);
    }

    [Fact]
    public async Task Only_platform_administrators_manage_users()
    {
        var user = await _app.UserClientAsync();

        await (await user.GetAsync("/api/v1/users")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await user.PostJsonAsync("/api/v1/users", new { email = "x@agentry.test", displayName = "x", password = "a-long-password-1" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task User_input_is_validated_and_emails_are_unique()
    {
        await (await _admin.PostJsonAsync("/api/v1/users", new { email = "not-an-email", displayName = "", password = "short" }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await _admin.PostJsonAsync("/api/v1/users", new { email = AgentryApp.AdminEmail.ToUpperInvariant(), displayName = "dup", password = "a-long-password-1" }))
            .AssertProblemAsync(HttpStatusCode.Conflict, "email_taken");
    }

    [Fact]
    public async Task Users_are_listed_a_page_at_a_time()
    {
        for (var i = 0; i < 3; i++)
        {
            await _app.CreateUserAsync();
        }
        var seen = new List<Guid>();
        string? cursor = null;
        do
        {
            var page = await (await _admin.GetAsync("/api/v1/users?limit=2&sort=email" + (cursor is null ? "" : $"&cursor={cursor}"))).ReadAsync<Page<UserResponse>>();
            seen.AddRange(page.Items.Select(u => u.Id));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        Assert.True(seen.Count >= 4);
        Assert.Equal(seen.Count, seen.Distinct().Count());
    }

    [Fact]
    public async Task Members_are_managed_by_workspace_admins_and_the_last_owner_stays()
    {
        var workspace = await (await _admin.PostJsonAsync("/api/v1/workspaces", new { name = "team", slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        var me = await (await _admin.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        var member = await _app.UserClientAsync(workspace.Id, Roles.Member);
        var (otherId, _, _) = await _app.CreateUserAsync();

        await (await member.PutAsJsonAsync($"/api/v1/workspaces/{workspace.Id}/members/{otherId}", new { role = "viewer" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{workspace.Id}/members/{otherId}", new { role = "superuser" }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{workspace.Id}/members/{me.Id}", new { role = "admin" }))
            .AssertProblemAsync(HttpStatusCode.Conflict, "last_owner");
        await (await _admin.DeleteAsync($"/api/v1/workspaces/{workspace.Id}/members/{me.Id}"))
            .AssertProblemAsync(HttpStatusCode.Conflict, "last_owner");
    }

    [Fact]
    public async Task Deleting_a_user_removes_their_memberships_and_refuses_their_tokens_but_never_oneself_or_a_last_owner()
    {
        var workspace = await (await _admin.PostJsonAsync("/api/v1/workspaces", new { name = "deleting", slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        var (id, email, password) = await _app.CreateUserAsync(workspace.Id, Roles.Member);
        var client = await _app.SignedInClientAsync(email, password);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/users/{id}")).StatusCode);

        await (await client.GetAsync("/api/v1/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        await (await _admin.GetAsync($"/api/v1/users/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        var members = (await (await _admin.GetAsync($"/api/v1/workspaces/{workspace.Id}/members")).ReadAsync<Page<MemberResponse>>()).Items;
        Assert.DoesNotContain(members, m => m.UserId == id);
        var audit = await (await _admin.GetAsync($"/api/v1/audit?action={AuditActions.UserDeleted}")).ReadAsync<Page<AuditEventResponse>>();
        Assert.Contains(audit.Items, e => e.Target == AuditTargets.User(id));

        var me = await (await _admin.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        await (await _admin.DeleteAsync($"/api/v1/users/{me.Id}")).AssertProblemAsync(HttpStatusCode.Conflict, "cannot_delete_self");
        var (owner, _, _) = await _app.CreateUserAsync();
        var owned = await _app.CreateWorkspaceAsync();
        Assert.Equal(HttpStatusCode.OK, (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{owned}/members/{owner}", new { role = "owner" })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/workspaces/{owned}/members/{me.Id}")).StatusCode);
        await (await _admin.DeleteAsync($"/api/v1/users/{owner}")).AssertProblemAsync(HttpStatusCode.Conflict, "last_owner");
    }

    private static string NewSlug() => "ws-" + Guid.NewGuid().ToString("N")[..16];
}
