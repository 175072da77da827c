using System.Net.Http.Json;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Infrastructure;

public sealed partial class AgentryApp
{
    /// <summary>A client signed in as the bootstrap administrator.</summary>
    public Task<HttpClient> AdminClientAsync() => SignedInClientAsync(AdminEmail, AdminPassword);

    /// <summary>A client with a bearer token from the password grant.</summary>
    public async Task<HttpClient> SignedInClientAsync(string email, string password)
    {
        var client = Client();
        var tokens = await RequestTokensAsync(client, email, password);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        return client;
    }

    public static async Task<JsonElement> RequestTokensAsync(HttpClient client, string email, string password, string scope = "")
    {
        var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["client_id"] = "agentry-cli",
            ["username"] = email,
            ["password"] = password,
            ["scope"] = scope,
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"sign-in as {email} failed: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    /// <summary>
    /// Adds a user straight to the database (user management arrives with its own endpoints), with a role
    /// in a workspace when given, and returns a client signed in as them.
    /// </summary>
    public async Task<HttpClient> UserClientAsync(Guid? workspaceId = null, string role = Roles.Member)
    {
        var (_, email, password) = await CreateUserAsync(workspaceId, role);
        return await SignedInClientAsync(email, password);
    }

    /// <summary>
    /// Waits for the identity bootstrap. It creates the administrator only in a database without users, so a test
    /// that adds a user to the database itself must wait for it, or the administrator may never be made.
    /// </summary>
    public Task BootstrappedAsync() => Services.GetRequiredService<IdentityBootstrap>().Completed.WaitAsync(TimeSpan.FromSeconds(30));

    public async Task<(Guid Id, string Email, string Password)> CreateUserAsync(Guid? workspaceId = null, string role = Roles.Member)
    {
        await BootstrappedAsync();
        var email = $"user-{Guid.NewGuid():N}@agentry.test";
        const string password = "user-password-123";
        Guid id;
        await using (var scope = Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var user = new User { Id = Guid.CreateVersion7(), Email = email, NormalizedEmail = User.Normalize(email), DisplayName = "Test user", CreatedAt = DateTime.UtcNow };
            user.PasswordHash = scope.ServiceProvider.GetRequiredService<IPasswordHasher<User>>().HashPassword(user, password);
            db.Users.Add(user);
            id = user.Id;
            if (workspaceId is { } workspace)
            {
                db.Memberships.Add(new Membership { WorkspaceId = workspace, UserId = user.Id, Role = role, CreatedAt = DateTime.UtcNow });
            }
            await db.SaveChangesAsync();
        }
        return (id, email, password);
    }

    /// <summary>Creates an API key through the API (as <paramref name="admin"/>) and returns the secret.</summary>
    public static async Task<string> CreateApiKeyAsync(HttpClient admin, Guid workspaceId, params string[] scopes)
    {
        var response = await admin.PostAsJsonAsync($"/api/v1/workspaces/{workspaceId}/api-keys", new { name = "test key", scopes });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, $"creating a key failed: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("key").GetString()!;
    }

    /// <summary>A client that authenticates with an API key.</summary>
    public HttpClient KeyClient(string key)
    {
        var client = Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>A new workspace (created by the bootstrap administrator), for tests that need their own.</summary>
    public async Task<Guid> CreateWorkspaceAsync()
    {
        var admin = await AdminClientAsync();
        var slug = $"ws-{Guid.NewGuid():N}"[..20];
        var response = await admin.PostAsJsonAsync("/api/v1/workspaces", new { name = slug, slug });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, $"creating a workspace failed: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();
    }
}
