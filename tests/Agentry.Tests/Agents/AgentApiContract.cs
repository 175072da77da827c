using System.Net;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;

namespace Agentry.Tests.Agents;

/// <summary>The agent API's behaviour, the same on every storage provider. Each test works in workspaces of its own.</summary>
public abstract class AgentApiContract(StorageFixture fixture)
{
    private const string Url = "/api/v1/agents";
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task Create_returns_201_with_location_defaults_and_what_a_read_returns()
    {
        var (_, client) = await WorkspaceAsync();
        var response = await client.PostJsonAsync(Url, Llm("triage", systemPrompt: "Sort the tickets.", tools: ["search", "email"]));

        var created = await response.ReadAsync<AgentResponse>(HttpStatusCode.Created);
        Assert.Equal($"{Url}/{created.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal(7, created.Id.Version);
        Assert.Equal(("triage", AgentKinds.Llm, "llama3.2", "Sort the tickets.", 1), (created.Name, created.Kind, created.Model, created.SystemPrompt, created.Version));
        Assert.Equal(["search", "email"], created.AllowedTools);
        Assert.Empty(created.KnowledgeCollections);
        Assert.Equal(new AgentLimits(10, 8_192, 300), created.Limits);
        Assert.Null(created.Webhook);

        var fetched = await client.GetAsync(response.Headers.Location);
        Assert.Equal(await Text(response), await Text(fetched));
    }

    [Fact]
    public async Task Server_owned_fields_sent_by_the_client_are_ignored()
    {
        var (_, client) = await WorkspaceAsync();
        var forged = Guid.CreateVersion7();
        var created = await (await client.PostJsonAsync(Url, new { id = forged, name = "n", kind = "tool", tool = "srv__noop", version = 9, createdAt = "2001-01-01T00:00:00Z", workspaceId = forged }))
            .ReadAsync<AgentResponse>(HttpStatusCode.Created);

        Assert.NotEqual(forged, created.Id);
        Assert.Equal(1, created.Version);
        Assert.True(created.CreatedAt.Year > 2001);
    }

    [Fact]
    public async Task A_taken_name_is_a_409_and_a_deleted_agent_frees_it()
    {
        var (_, client) = await WorkspaceAsync();
        var first = await CreateAsync(client, Llm("dup"));

        await (await client.PostJsonAsync(Url, Llm("dup"))).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        var other = await CreateAsync(client, Llm("other"));
        await (await client.PatchAsync($"{Url}/{other.Id}", HttpAssertions.Json(new { name = "dup" }))).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{first.Id}")).StatusCode);
        await CreateAsync(client, Llm("dup"));
    }

    [Fact]
    public async Task Invalid_fields_are_a_400_naming_each_field()
    {
        var (_, client) = await WorkspaceAsync();

        await AssertFieldErrorsAsync(client, new { name = "no model", kind = "llm" }, "model");
        await AssertFieldErrorsAsync(client, new { name = "no url", kind = "webhook" }, "webhook");
        await AssertFieldErrorsAsync(client, new { name = "ftp", kind = "webhook", webhook = new { url = "ftp://example.com/x" } }, "webhook.url");
        await AssertFieldErrorsAsync(client, new { name = "relative", kind = "webhook", webhook = new { url = "/hooks/1" } }, "webhook.url");
        await AssertFieldErrorsAsync(client, new { name = "kind", kind = "robot" }, "kind");
        await AssertFieldErrorsAsync(client, new { name = "", kind = "tool", tool = "srv__noop" }, "name");
        await AssertFieldErrorsAsync(client, new { description = "neither name nor kind" }, "name", "kind");
        await AssertFieldErrorsAsync(client,
            new { name = "limits", kind = "tool", tool = "srv__noop", limits = new { maxSteps = 0, maxTokens = 1_000_001, timeoutSeconds = 3_601 } },
            "limits.maxSteps", "limits.maxTokens", "limits.timeoutSeconds");
        await AssertFieldErrorsAsync(client,
            new { name = "big", kind = "tool", tool = "srv__noop", systemPrompt = new string('x', 32_001), allowedTools = Enumerable.Range(0, 101).Select(i => $"t{i}"), knowledgeCollections = Enumerable.Range(0, 51).Select(i => $"c{i}") },
            "systemPrompt", "allowedTools", "knowledgeCollections");

        var agent = await CreateAsync(client, Llm("valid"));
        var bad = await client.PatchAsync($"{Url}/{agent.Id}", HttpAssertions.Json(new { kind = "webhook", limits = new { maxSteps = 101 } }));
        var errors = (await bad.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
        Assert.True(errors.TryGetProperty("limits.maxSteps", out _), errors.ToString());
        Assert.Equal(1, (await GetAsync(client, agent.Id)).Version);
    }

    [Fact]
    public async Task Each_change_makes_a_version_and_old_versions_stay_as_they_were()
    {
        var (_, client) = await WorkspaceAsync();
        var created = await CreateAsync(client, Llm("versioned", systemPrompt: "v1", tools: ["a"]));
        var v1 = await (await client.GetAsync($"{Url}/{created.Id}/versions/1")).ReadAsync<AgentVersionResponse>();

        var v2 = await PatchAsync(client, created.Id, new { systemPrompt = "v2" });
        var v3 = await PatchAsync(client, created.Id, new { limits = new { maxSteps = 3 } });
        var v4 = await PatchAsync(client, created.Id, new { name = "renamed", allowedTools = Array.Empty<string>() });

        Assert.Equal((2, 3, 4), (v2.Version, v3.Version, v4.Version));
        Assert.Equal(("renamed", "v2", "llama3.2"), (v4.Name, v4.SystemPrompt, v4.Model));
        Assert.Equal(new AgentLimits(3, 8_192, 300), v4.Limits);
        Assert.Empty(v4.AllowedTools);
        Assert.Equal(v4.CreatedAt, created.CreatedAt);

        var versions = await AllVersionsAsync(client, created.Id);
        Assert.Equal([4, 3, 2, 1], versions.Select(v => v.Version));
        var first = versions[^1];
        Assert.Equal(("versioned", "v1", 10), (first.Name, first.Definition.SystemPrompt, first.Definition.Limits.MaxSteps));
        Assert.Equal(["a"], first.Definition.AllowedTools);
        Assert.Equal(JsonSerializer.Serialize(v1), JsonSerializer.Serialize(first));
        Assert.Equal(3, versions[1].Definition.Limits.MaxSteps);
        Assert.Equal("versioned", versions[1].Name);
    }

    [Fact]
    public async Task A_patch_that_changes_nothing_makes_no_version()
    {
        var (_, client) = await WorkspaceAsync();
        var created = await CreateAsync(client, Llm("steady", systemPrompt: "same"));

        var same = await PatchAsync(client, created.Id, new { systemPrompt = "same", model = "llama3.2", limits = new { maxSteps = 10 } });
        var empty = await PatchAsync(client, created.Id, new { });

        Assert.Equal((1, 1), (same.Version, empty.Version));
        Assert.Single(await AllVersionsAsync(client, created.Id));
        await (await client.GetAsync($"{Url}/{created.Id}/versions/2")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Delete_hides_the_agent_and_later_calls_answer_404()
    {
        var (_, client) = await WorkspaceAsync();
        var created = await CreateAsync(client, Llm("doomed"));
        (await client.GetAsync($"{Url}/{created.Id}")).EnsureSuccessStatusCode(); // now cached

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Url}/{created.Id}")).StatusCode);

        await (await client.GetAsync($"{Url}/{created.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.DeleteAsync($"{Url}/{created.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.PatchAsync($"{Url}/{created.Id}", HttpAssertions.Json(new { name = "x" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.GetAsync($"{Url}/{created.Id}/versions")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await client.GetAsync($"{Url}/{created.Id}/export")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.DoesNotContain((await ListAllAsync(client, "-createdAt")), a => a.Id == created.Id);
    }

    [Fact]
    public async Task Only_admins_delete_viewers_only_read_and_keys_need_the_scope()
    {
        var (workspace, admin) = await WorkspaceAsync();
        var agent = await CreateAsync(admin, Llm("guarded"));
        var member = await _app.UserClientAsync(workspace, Roles.Member);
        var viewer = await _app.UserClientAsync(workspace, Roles.Viewer);
        var reader = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(admin, workspace, ApiKeyScopes.AgentsRead));
        var writer = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(admin, workspace, ApiKeyScopes.AgentsWrite, ApiKeyScopes.AgentsRead));

        await (await member.DeleteAsync($"{Url}/{agent.Id}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await viewer.PostJsonAsync(Url, Llm("by viewer"))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await viewer.PatchAsync($"{Url}/{agent.Id}", HttpAssertions.Json(new { name = "x" }))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await reader.PostJsonAsync(Url, Llm("by reader"))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(agent.Id, (await GetAsync(viewer, agent.Id)).Id);
        Assert.Equal(agent.Id, (await GetAsync(reader, agent.Id)).Id);

        var byKey = await CreateAsync(writer, Llm("by key"));
        var byMember = await CreateAsync(member, Llm("by member"));
        Assert.Equal(2, (await PatchAsync(member, byKey.Id, new { systemPrompt = "edited" })).Version);
        await (await writer.DeleteAsync($"{Url}/{byMember.Id}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Another_workspaces_agent_answers_404_to_users_and_keys()
    {
        var (home, owner) = await WorkspaceAsync();
        var agent = await CreateAsync(owner, Llm("private"));
        var (away, awayAdmin) = await WorkspaceAsync();
        var awayKey = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(awayAdmin, away, ApiKeyScopes.Admin));

        foreach (var client in new[] { awayAdmin, awayKey })
        {
            await (await client.GetAsync($"{Url}/{agent.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            await (await client.PatchAsync($"{Url}/{agent.Id}", HttpAssertions.Json(new { name = "stolen" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            await (await client.DeleteAsync($"{Url}/{agent.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            await (await client.GetAsync($"{Url}/{agent.Id}/versions/1")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            Assert.DoesNotContain(await ListAllAsync(client, "name"), a => a.Id == agent.Id);
            // Naming the other workspace does not help: a user is no member there, a key is bound elsewhere.
            await (await Send(client, HttpMethod.Get, $"{Url}/{agent.Id}", home.ToString())).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
            await (await Send(client, HttpMethod.Get, Url, home.ToString())).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        }
        Assert.Equal("private", (await GetAsync(owner, agent.Id)).Name);
    }

    [Fact]
    public async Task The_workspace_comes_from_the_header_by_id_or_slug_or_from_a_single_membership()
    {
        var (first, firstAdmin) = await WorkspaceAsync();
        var (second, _) = await WorkspaceAsync();
        var (userId, email, password) = await _app.CreateUserAsync(first, Roles.Member);
        var user = await _app.SignedInClientAsync(email, password);
        var implicitAgent = await CreateAsync(user, Llm("implicit")); // one membership: no header needed
        (await fixture.Client.PutAsync($"/api/v1/workspaces/{second}/members/{userId}", HttpAssertions.Json(new { role = Roles.Member }))).EnsureSuccessStatusCode();

        var missing = await user.GetAsync(Url);
        var errors = (await missing.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
        Assert.True(errors.TryGetProperty("agentry-workspace", out _), errors.ToString());

        var slug = (await (await fixture.Client.GetAsync($"/api/v1/workspaces/{second}")).ReadAsync<WorkspaceResponse>()).Slug;
        var bySlug = await (await Send(user, HttpMethod.Post, Url, slug, Llm("in second"))).ReadAsync<AgentResponse>(HttpStatusCode.Created);
        var inSecond = await (await Send(user, HttpMethod.Get, Url, second.ToString())).ReadAsync<Page<AgentResponse>>();
        var inFirst = await (await Send(user, HttpMethod.Get, Url, first.ToString())).ReadAsync<Page<AgentResponse>>();

        Assert.Equal([bySlug.Id], inSecond.Items.Select(a => a.Id));
        Assert.Equal([implicitAgent.Id], inFirst.Items.Select(a => a.Id));
        Assert.Equal(implicitAgent.Id, (await GetAsync(firstAdmin, implicitAgent.Id)).Id);
        await (await Send(user, HttpMethod.Get, Url, "no-such-workspace")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await Send(user, HttpMethod.Get, $"{Url}/{bySlug.Id}", first.ToString())).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");

        // A name looked up before its workspace existed resolves once it does (names are cached).
        var later = "later-" + Guid.NewGuid().ToString("N")[..8];
        await (await Send(user, HttpMethod.Get, Url, later)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        var created = await (await fixture.Client.PostJsonAsync("/api/v1/workspaces", new { name = "later", slug = later })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        (await fixture.Client.PutAsync($"/api/v1/workspaces/{created.Id}/members/{userId}", HttpAssertions.Json(new { role = Roles.Member }))).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await Send(user, HttpMethod.Get, Url, later)).StatusCode);
    }

    [Fact]
    public async Task Export_then_import_makes_an_equal_agent()
    {
        var (_, client) = await WorkspaceAsync();
        var original = await CreateAsync(client, new
        {
            name = "hook", kind = "webhook", description = "calls out", systemPrompt = "p", allowedTools = new[] { "t1" },
            knowledgeCollections = new[] { "docs" }, limits = new { maxTokens = 100 }, webhook = new { url = "https://hooks.example.com/x" },
        });
        await PatchAsync(client, original.Id, new { description = "calls out, v2" });

        var exported = await client.GetAsync($"{Url}/{original.Id}/export");
        var document = JsonDocument.Parse(await Text(exported)).RootElement;
        Assert.Equal("agent/v1", document.GetProperty("agentry").GetString());
        Assert.Equal("agentry", document.EnumerateObject().First().Name);
        Assert.False(document.TryGetProperty("id", out _));
        Assert.False(document.TryGetProperty("workspaceId", out _));
        Assert.False(document.TryGetProperty("version", out _));

        await (await client.PostJsonAsync($"{Url}/import", document)).AssertProblemAsync(HttpStatusCode.Conflict, "name_taken");
        var imported = await (await client.PostJsonAsync($"{Url}/import?name=hook-copy", document)).ReadAsync<AgentResponse>(HttpStatusCode.Created);
        var source = await GetAsync(client, original.Id);

        Assert.Equal("hook-copy", imported.Name);
        Assert.Equal(1, imported.Version);
        Assert.Equal(Definition(source), Definition(imported));
        var (_, elsewhere) = await WorkspaceAsync();
        var moved = await (await elsewhere.PostJsonAsync($"{Url}/import", document)).ReadAsync<AgentResponse>(HttpStatusCode.Created);
        Assert.Equal(Definition(source), Definition(moved));
        Assert.Equal("hook", moved.Name);
        await AssertFieldErrorsAsync(elsewhere, new { name = "no format", kind = "tool", tool = "srv__noop" }, ["agentry"], $"{Url}/import");
    }

    [Theory]
    [InlineData("-createdAt")]
    [InlineData("createdAt")]
    [InlineData("name")]
    [InlineData("-name")]
    public async Task Paging_visits_every_agent_once_in_sort_order(string sort)
    {
        var (_, client) = await WorkspaceAsync();
        var ours = new List<Guid>();
        foreach (var name in new[] { "kilo", "alpha", "zulu", "mike", "bravo", "echo", "delta" })
        {
            ours.Add((await CreateAsync(client, Llm(name))).Id);
        }

        var seen = await ListAllAsync(client, sort, limit: 3);

        Assert.Equal(ours.Order(), seen.Select(a => a.Id).Order());
        var expected = sort switch
        {
            "-createdAt" => seen.OrderByDescending(a => a.Id.ToString()),
            "createdAt" => seen.OrderBy(a => a.Id.ToString()),
            "name" => seen.OrderBy(a => a.Name, StringComparer.Ordinal),
            _ => seen.OrderByDescending(a => a.Name, StringComparer.Ordinal),
        };
        Assert.Equal(expected.Select(a => a.Id), seen.Select(a => a.Id));
    }

    [Fact]
    public async Task Lists_filter_by_kind_and_refuse_unknown_sorts_and_kinds()
    {
        var (_, client) = await WorkspaceAsync();
        await CreateAsync(client, Llm("thinker"));
        var tool = await CreateAsync(client, new { name = "hammer", kind = "tool", tool = "srv__noop" });

        var tools = await (await client.GetAsync($"{Url}?kind=tool")).ReadAsync<Page<AgentResponse>>();
        Assert.Equal([tool.Id], tools.Items.Select(a => a.Id));

        (await (await client.GetAsync($"{Url}?sort={Uri.EscapeDataString("name;DROP TABLE agents")}")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("sort");
        (await (await client.GetAsync($"{Url}?sort=updatedAt")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").GetProperty("sort");
        (await (await client.GetAsync($"{Url}?kind=robot")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").GetProperty("kind");
        await (await client.GetAsync($"{Url}?cursor=not-a-cursor")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
        await (await client.GetAsync($"{Url}/{tool.Id}/versions?cursor=not-a-cursor")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
        Assert.Equal(2, (await ListAllAsync(client, "name")).Count);
    }

    [Fact]
    public async Task Cached_reads_see_every_change_at_once()
    {
        var (_, client) = await WorkspaceAsync();
        var agent = await CreateAsync(client, Llm("cached", systemPrompt: "before"));
        Assert.Single(await ListAllAsync(client, "-createdAt")); // list and item now cached
        Assert.Equal("before", (await GetAsync(client, agent.Id)).SystemPrompt);

        await PatchAsync(client, agent.Id, new { systemPrompt = "after" });
        Assert.Equal("after", (await GetAsync(client, agent.Id)).SystemPrompt);
        Assert.Equal("after", Assert.Single(await ListAllAsync(client, "-createdAt")).SystemPrompt);

        var second = await CreateAsync(client, Llm("second"));
        Assert.Equal(2, (await ListAllAsync(client, "-createdAt")).Count);
        (await client.DeleteAsync($"{Url}/{second.Id}")).EnsureSuccessStatusCode();
        Assert.Equal(agent.Id, Assert.Single(await ListAllAsync(client, "-createdAt")).Id);
    }

    /// <summary>A new workspace and a client of its admin, who belongs to no other (so needs no header).</summary>
    private async Task<(Guid Id, HttpClient Admin)> WorkspaceAsync()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        return (workspace, await _app.UserClientAsync(workspace, Roles.Admin));
    }

    private static object Llm(string name, string? systemPrompt = null, string[]? tools = null) =>
        new { name, kind = "llm", model = "llama3.2", systemPrompt, allowedTools = tools };

    private static async Task<AgentResponse> CreateAsync(HttpClient client, object body) =>
        await (await client.PostJsonAsync(Url, body)).ReadAsync<AgentResponse>(HttpStatusCode.Created);

    private static async Task<AgentResponse> GetAsync(HttpClient client, Guid id) =>
        await (await client.GetAsync($"{Url}/{id}")).ReadAsync<AgentResponse>();

    private static async Task<AgentResponse> PatchAsync(HttpClient client, Guid id, object body) =>
        await (await client.PatchAsync($"{Url}/{id}", HttpAssertions.Json(body))).ReadAsync<AgentResponse>();

    private static Task<HttpResponseMessage> Send(HttpClient client, HttpMethod method, string url, string workspace, object? body = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = body is null ? null : HttpAssertions.Json(body) };
        request.Headers.Add(CurrentWorkspace.HeaderName, workspace);
        return client.SendAsync(request);
    }

    private static async Task AssertFieldErrorsAsync(HttpClient client, object body, params string[] fields) =>
        await AssertFieldErrorsAsync(client, body, fields, Url);

    private static async Task AssertFieldErrorsAsync(HttpClient client, object body, string[] fields, string url)
    {
        var problem = await (await client.PostJsonAsync(url, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var errors = problem.GetProperty("errors");
        foreach (var field in fields)
        {
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}: {errors}");
        }
    }

    private static async Task<List<AgentResponse>> ListAllAsync(HttpClient client, string sort, int limit = 50)
    {
        var seen = new List<AgentResponse>();
        string? cursor = null;
        do
        {
            var query = $"{Url}?limit={limit}&sort={Uri.EscapeDataString(sort)}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}");
            var page = await (await client.GetAsync(query)).ReadAsync<Page<AgentResponse>>();
            Assert.InRange(page.Items.Count, 0, limit);
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
            Assert.True(seen.Count < 1000, "paging does not end");
        }
        while (cursor is not null);
        Assert.Equal(seen.Count, seen.Select(a => a.Id).Distinct().Count());
        return seen;
    }

    private static async Task<List<AgentVersionResponse>> AllVersionsAsync(HttpClient client, Guid id)
    {
        var seen = new List<AgentVersionResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"{Url}/{id}/versions?limit=2" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")))
                .ReadAsync<Page<AgentVersionResponse>>();
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
            Assert.True(seen.Count < 1000, "paging does not end");
        }
        while (cursor is not null);
        return seen;
    }

    /// <summary>
    /// Everything an export carries but the name, as JSON for comparison. Hook secrets are left out: an export
    /// carries none, and an import's response shows the new one it generated.
    /// </summary>
    private static string Definition(AgentResponse a) => JsonSerializer.Serialize(
        new { a.Kind, a.Description, a.Model, a.SystemPrompt, a.AllowedTools, a.KnowledgeCollections, a.Limits, Webhook = a.Webhook?.Url, OnComplete = a.OnComplete?.Url });

    private static Task<string> Text(HttpResponseMessage response) => response.Content.ReadAsStringAsync();
}

public sealed class SqliteAgentApiTests(SqliteFixture fixture) : AgentApiContract(fixture), IClassFixture<SqliteFixture>;

public sealed class PostgresAgentApiTests(PostgresFixture fixture) : AgentApiContract(fixture), IClassFixture<PostgresFixture>;
