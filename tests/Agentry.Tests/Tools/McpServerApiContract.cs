using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using static Agentry.Tests.Tools.McpApi;

namespace Agentry.Tests.Tools;

/// <summary>The MCP server registry's API, the same on every storage provider; no server is started here.</summary>
public abstract class McpServerApiContract(StorageFixture fixture)
{
    private readonly AgentryApp _app = fixture.App;

    private static object Stdio(string name) => new { name, transport = "stdio", command = "/usr/bin/node", args = new[] { "server.js" } };

    [Fact]
    public async Task Create_read_list_change_and_delete_with_defaults_and_pages()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var created = await CreateAsync(client, Stdio("alpha"));
        var id = created.GetProperty("id").GetGuid();
        Assert.Equal(("alpha", "stdio", true, 30, false), (created.GetProperty("name").GetString(), created.GetProperty("transport").GetString(),
            created.GetProperty("enabled").GetBoolean(), created.GetProperty("callTimeoutSeconds").GetInt32(), created.GetProperty("requireApproval").GetBoolean()));
        Assert.Equal("idle", created.GetProperty("status").GetProperty("state").GetString());
        Assert.Equal(created.ToString(), (await (await client.GetAsync($"{Servers}/{id}")).ReadAsync<JsonElement>()).ToString());

        await CreateAsync(client, Stdio("beta"));
        await CreateAsync(client, Stdio("gamma"));
        var first = await (await client.GetAsync($"{Servers}?sort=name&limit=2")).ReadAsync<JsonElement>();
        Assert.Equal(["alpha", "beta"], first.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        var next = await (await client.GetAsync($"{Servers}?sort=name&limit=2&cursor={first.GetProperty("nextCursor").GetString()}")).ReadAsync<JsonElement>();
        Assert.Equal(["gamma"], next.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("name").GetString()));

        var changed = await (await client.PatchAsync($"{Servers}/{id}", HttpAssertions.Json(new { enabled = false, approvalTools = new[] { "write" }, requireApproval = true })))
            .ReadAsync<JsonElement>();
        Assert.Equal("disabled", changed.GetProperty("status").GetProperty("state").GetString());
        Assert.Equal(["write"], changed.GetProperty("approvalTools").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("/usr/bin/node", changed.GetProperty("command").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Servers}/{id}")).StatusCode);
        await (await client.GetAsync($"{Servers}/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.DeleteAsync($"{Servers}/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Invalid_fields_are_a_400_naming_each_field()
    {
        var (_, client) = await WorkspaceAsync(_app);

        await AssertFieldErrorsAsync(client, new { name = "Bad Name", transport = "stdio", command = "x" }, "name");
        await AssertFieldErrorsAsync(client, new { name = "a__b", transport = "stdio", command = "x" }, "name");
        await AssertFieldErrorsAsync(client, new { name = "-edge", transport = "stdio", command = "x" }, "name");
        await AssertFieldErrorsAsync(client, new { name = new string('a', 33), transport = "stdio", command = "x" }, "name");
        await AssertFieldErrorsAsync(client, new { name = "no-command", transport = "stdio" }, "command");
        await AssertFieldErrorsAsync(client, new { name = "carrier", transport = "pigeon" }, "transport");
        await AssertFieldErrorsAsync(client, new { name = "no-url", transport = "http" }, "url");
        await AssertFieldErrorsAsync(client, new { name = "ftp", transport = "http", url = "ftp://example.com/mcp" }, "url");
        await AssertFieldErrorsAsync(client, new { name = "relative", transport = "http", url = "/mcp" }, "url");
        await AssertFieldErrorsAsync(client, new { name = "private", transport = "http", url = "http://10.1.2.3/mcp" }, "url");
        await AssertFieldErrorsAsync(client, new { name = "metadata", transport = "http", url = "http://169.254.169.254/latest" }, "url");
        await AssertFieldErrorsAsync(client, new { name = "mixed", transport = "http", url = "https://example.com/mcp", command = "x" }, "command");
        await AssertFieldErrorsAsync(client, new { name = "mixed2", transport = "stdio", command = "x", url = "https://example.com/mcp" }, "url");
        await AssertFieldErrorsAsync(client,
            new { name = "limits", transport = "stdio", command = "x", args = Enumerable.Range(0, 65).Select(i => $"a{i}"), callTimeoutSeconds = 0 },
            "args", "callTimeoutSeconds");
        await AssertFieldErrorsAsync(client,
            new { name = "env", transport = "stdio", command = "x", environment = new Dictionary<string, string> { ["1BAD"] = "v", ["OK"] = new string('v', 4_001) } },
            "environment.1BAD", "environment.OK");
        await AssertFieldErrorsAsync(client,
            new { name = "head", transport = "http", url = "https://example.com/mcp", headers = new Dictionary<string, string> { ["Bad Header"] = "v", ["X-Ok"] = "a\r\nb" } },
            "headers.Bad Header", "headers.X-Ok");
        await AssertFieldErrorsAsync(client, new { name = "wd", transport = "stdio", command = "x", workingDirectory = "relative/dir" }, "workingDirectory");
        await AssertFieldErrorsAsync(client, new { name = "timeout", transport = "stdio", command = "x", callTimeoutSeconds = 601 }, "callTimeoutSeconds");

        var server = await CreateAsync(client, Stdio("valid"));
        var bad = await client.PatchAsync($"{Servers}/{server.GetProperty("id").GetGuid()}", HttpAssertions.Json(new { transport = "http" }));
        var errors = (await bad.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
        Assert.True(errors.TryGetProperty("url", out _), errors.ToString());
        Assert.False(errors.TryGetProperty("command", out _), errors.ToString()); // the stdio settings go with the transport

        var switched = await (await client.PatchAsync($"{Servers}/{server.GetProperty("id").GetGuid()}",
            HttpAssertions.Json(new { transport = "http", url = "https://example.com/mcp" }))).ReadAsync<JsonElement>();
        Assert.Equal("http", switched.GetProperty("transport").GetString());
        Assert.False(switched.TryGetProperty("command", out var command) && command.ValueKind != JsonValueKind.Null, switched.ToString());
        Assert.Empty(switched.GetProperty("args").EnumerateArray());
    }

    [Fact]
    public async Task A_taken_name_is_a_409_and_a_deleted_server_frees_it()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var first = await CreateAsync(client, Stdio("dup"));
        await (await client.PostJsonAsync(Servers, Stdio("dup"))).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        var other = await CreateAsync(client, Stdio("other"));
        await (await client.PatchAsync($"{Servers}/{other.GetProperty("id").GetGuid()}", HttpAssertions.Json(new { name = "dup" })))
            .AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Servers}/{first.GetProperty("id").GetGuid()}")).StatusCode);
        await CreateAsync(client, Stdio("dup"));

        var (_, elsewhere) = await WorkspaceAsync(_app);
        await CreateAsync(elsewhere, Stdio("dup")); // names are unique per workspace only
    }

    [Fact]
    public async Task Members_read_but_only_admins_register_and_keys_need_the_scopes()
    {
        var (workspace, admin) = await WorkspaceAsync(_app);
        var server = await CreateAsync(admin, Stdio("guarded"));
        var member = await _app.UserClientAsync(workspace, Roles.Member);

        Assert.Single((await (await member.GetAsync(Servers)).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        await (await member.PostJsonAsync(Servers, Stdio("mine"))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await member.DeleteAsync($"{Servers}/{server.GetProperty("id").GetGuid()}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");

        var tools = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall));
        Assert.Equal(HttpStatusCode.OK, (await tools.GetAsync(Servers)).StatusCode);
        await (await tools.PostJsonAsync(Servers, Stdio("keyed"))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var chat = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.Chat));
        await (await chat.GetAsync("/api/v1/tools")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    private static async Task AssertFieldErrorsAsync(HttpClient client, object body, params string[] fields)
    {
        var problem = await (await client.PostJsonAsync(Servers, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var errors = problem.GetProperty("errors");
        foreach (var field in fields)
        {
            Assert.True(errors.TryGetProperty(field, out _), $"no error for '{field}' in {errors}");
        }
    }
}

public sealed class SqliteMcpServerApiTests(SqliteFixture fixture) : McpServerApiContract(fixture), IClassFixture<SqliteFixture>;

public sealed class PostgresMcpServerApiTests(PostgresFixture fixture) : McpServerApiContract(fixture), IClassFixture<PostgresFixture>;
