using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Chat;
using Agentry.Tests.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Tools;
using Agentry.Workspaces;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Agentry.Tests.Mcp.McpTestClient;

namespace Agentry.Tests.Mcp;

/// <summary>
/// <c>/mcp</c> through the SDK's own client (Streamable HTTP over the test host's handler): who may connect, which tools
/// each caller gets, the platform tools against the REST API they stand for, bridged tools against a real MCP server,
/// workspace isolation and the audit trail.
/// </summary>
public sealed class McpEndpointTests(McpEndpointFixture fixture) : IClassFixture<McpEndpointFixture>
{
    private static readonly string[] PlatformTools = ["list_agents", "create_task", "get_task", "chat_with_agent", "search_knowledge"];
    private static readonly string[] MemberScopes =
        [ApiKeyScopes.ToolsCall, ApiKeyScopes.AgentsRead, ApiKeyScopes.TasksRead, ApiKeyScopes.TasksWrite, ApiKeyScopes.Chat, ApiKeyScopes.KnowledgeRead];

    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task An_api_key_lists_the_tools_with_schemas_and_creates_a_task_the_rest_api_then_shows()
    {
        var (workspace, agent) = await WorkspaceWithAgentAsync();
        var http = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, MemberScopes));
        await using var client = await ConnectAsync(http);

        var tools = await client.ListToolsAsync();
        Assert.Superset(PlatformTools.ToHashSet(), tools.Select(t => t.Name).ToHashSet());
        foreach (var tool in tools.Where(t => PlatformTools.Contains(t.Name)))
        {
            Assert.Equal("object", tool.JsonSchema.GetProperty("type").GetString());
            Assert.True(tool.JsonSchema.GetProperty("properties").EnumerateObject().Any(), $"{tool.Name} has no properties");
            Assert.False(string.IsNullOrWhiteSpace(tool.Description));
        }
        Assert.Equal("agentId", tools.Single(t => t.Name == "create_task").JsonSchema.GetProperty("required")[0].GetString());

        var agents = await CallAsync(client, "list_agents", new() { ["kind"] = "llm" });
        Assert.Contains(agents.GetProperty("items").EnumerateArray(), a => a.GetProperty("id").GetGuid() == agent);

        var created = await CallAsync(client, "create_task", new()
        {
            ["agentId"] = agent, ["input"] = new { message = "hello" }, ["priority"] = 7, ["idempotencyKey"] = "mcp-once",
        });
        var taskId = created.GetProperty("id").GetGuid();
        Assert.Equal(7, created.GetProperty("priority").GetInt32());
        var rest = await (await http.GetAsync($"/api/v1/tasks/{taskId}")).ReadAsync<JsonElement>();
        Assert.Equal(agent, rest.GetProperty("agentId").GetGuid());
        Assert.Equal("hello", rest.GetProperty("input").GetProperty("message").GetString());

        // The same key and arguments are the same request, through /mcp or through the REST API with the header.
        var again = await CallAsync(client, "create_task", new()
        {
            ["agentId"] = agent, ["input"] = new { message = "hello" }, ["priority"] = 7, ["idempotencyKey"] = "mcp-once",
        });
        Assert.Equal(taskId, again.GetProperty("id").GetGuid());
        using var replay = new HttpRequestMessage(HttpMethod.Post, "/api/v1/tasks")
        {
            Content = HttpAssertions.Json(new { agentId = agent, input = new { message = "hello" }, priority = 7 }),
        };
        replay.Headers.Add("Idempotency-Key", "mcp-once");
        Assert.Equal(taskId, (await (await http.SendAsync(replay)).ReadAsync<JsonElement>(HttpStatusCode.Accepted)).GetProperty("id").GetGuid());

        var read = await CallAsync(client, "get_task", new() { ["id"] = taskId });
        Assert.Equal(taskId, read.GetProperty("id").GetGuid());
        Assert.Equal(agent, read.GetProperty("agentId").GetGuid());
    }

    [Fact]
    public async Task Invalid_arguments_are_tool_errors_naming_what_is_wrong()
    {
        var (workspace, agent) = await WorkspaceWithAgentAsync();
        await using var client = await ConnectAsync(_app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, MemberScopes)));

        Assert.Contains("priority", await ToolErrorAsync(client, "create_task", new() { ["agentId"] = agent, ["priority"] = 12 }));
        Assert.Contains("agentId", await ToolErrorAsync(client, "create_task", new() { ["input"] = "no agent" }));
        Assert.Contains("agentId", await ToolErrorAsync(client, "create_task", new() { ["agentId"] = "not-a-uuid" }));
        Assert.Contains("was not found", await ToolErrorAsync(client, "create_task", new() { ["agentId"] = Guid.NewGuid() }));
        Assert.Contains("was not found", await ToolErrorAsync(client, "get_task", new() { ["id"] = Guid.NewGuid() }));
        Assert.Contains("no tool 'nothing__here'", await ToolErrorAsync(client, "nothing__here", new()));
    }

    [Fact]
    public async Task An_access_token_connects_in_the_workspace_its_header_names_and_chats_with_an_llm_agent()
    {
        var (workspace, agent) = await WorkspaceWithAgentAsync();
        await using var client = await ConnectAsync(await WorkspaceClients.InAsync(_app, workspace, Roles.Member));

        Assert.Superset(PlatformTools.ToHashSet(), (await client.ListToolsAsync()).Select(t => t.Name).ToHashSet());
        var agents = await CallAsync(client, "list_agents", new());
        Assert.Contains(agents.GetProperty("items").EnumerateArray(), a => a.GetProperty("id").GetGuid() == agent);

        var reply = await client.CallToolAsync("chat_with_agent", new Dictionary<string, object?> { ["agentId"] = agent, ["message"] = "Say hello." });
        Assert.NotEqual(true, reply.IsError);
        var text = Assert.IsType<TextContentBlock>(Assert.Single(reply.Content)).Text;
        Assert.False(string.IsNullOrWhiteSpace(text));
        var exchange = reply.StructuredContent!.Value;
        Assert.Equal(text, exchange.GetProperty("reply").GetProperty("content").GetString());
        Assert.Equal("complete", exchange.GetProperty("reply").GetProperty("status").GetString());

        Assert.Contains("only llm agents", await ToolErrorAsync(client, "chat_with_agent", new()
        {
            ["agentId"] = await CreateAgentAsync(workspace, "tool"), ["message"] = "hi",
        }));
    }

    [Fact]
    public async Task Viewers_read_but_cannot_create_tasks_or_chat()
    {
        var (workspace, agent) = await WorkspaceWithAgentAsync();
        var viewerKey = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(
            fixture.Client, workspace, ApiKeyScopes.ToolsCall, ApiKeyScopes.AgentsRead, ApiKeyScopes.TasksRead));
        var viewerUser = await WorkspaceClients.InAsync(_app, workspace, Roles.Viewer);
        foreach (var http in new[] { viewerKey, viewerUser })
        {
            await using var client = await ConnectAsync(http);
            var names = (await client.ListToolsAsync()).Select(t => t.Name).ToList();
            Assert.Contains("list_agents", names);
            Assert.Contains("get_task", names);
            Assert.DoesNotContain("create_task", names);
            Assert.DoesNotContain("chat_with_agent", names);
            Assert.DoesNotContain(names, n => n.StartsWith(EverythingToolCatalog.Server + ToolDescriptor.Separator, StringComparison.Ordinal));

            var refusal = await ToolErrorAsync(client, "create_task", new() { ["agentId"] = agent });
            Assert.True(refusal.Contains("tasks:write") || refusal.Contains("member role"), refusal);
            Assert.NotEmpty((await CallAsync(client, "list_agents", new())).GetProperty("items").EnumerateArray());
        }
        using var rest = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/tasks?agentId={agent}");
        rest.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        Assert.Empty((await (await fixture.Client.SendAsync(rest)).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Without_credentials_401_and_without_the_tools_call_scope_403_as_problem_details()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var anonymous = await PostListAsync(_app.Client());
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("Bearer", anonymous.Headers.WwwAuthenticate.ToString());

        var noScope = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.AgentsRead, ApiKeyScopes.TasksWrite));
        var forbidden = await (await PostListAsync(noScope)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Contains("tools:call", forbidden.GetProperty("detail").GetString());

        // The SDK's client fails to connect as plainly.
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(noScope));

        // Stateless: no GET stream and no session to delete.
        var allowed = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await allowed.GetAsync("/mcp")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await allowed.DeleteAsync("/mcp")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PostListAsync(allowed)).StatusCode);
    }

    [Fact]
    public async Task A_key_of_one_workspace_never_sees_another_workspaces_agents_tasks_or_tools()
    {
        var (a, agentOfA) = await WorkspaceWithAgentAsync();
        var taskOfA = await _app.InsertTaskAsync(a, agentOfA);
        var b = await _app.CreateWorkspaceAsync();
        var keyOfB = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, b, MemberScopes));
        await using var client = await ConnectAsync(keyOfB);

        Assert.DoesNotContain((await client.ListToolsAsync()).Select(t => t.Name), n => n.Contains(ToolDescriptor.Separator, StringComparison.Ordinal));
        Assert.Empty((await CallAsync(client, "list_agents", new())).GetProperty("items").EnumerateArray());
        Assert.Contains("was not found", await ToolErrorAsync(client, "get_task", new() { ["id"] = taskOfA }));
        Assert.Contains("was not found", await ToolErrorAsync(client, "create_task", new() { ["agentId"] = agentOfA }));
        Assert.Contains("no tool", await ToolErrorAsync(client, "everything__echo", new() { ["message"] = "hi" }));

        // Naming workspace A in the header does not move B's key there.
        keyOfB.DefaultRequestHeaders.Add(CurrentWorkspace.HeaderName, a.ToString());
        Assert.Equal(HttpStatusCode.NotFound, (await PostListAsync(keyOfB)).StatusCode);
    }

    [Fact]
    public async Task Bridged_tools_of_a_real_stdio_server_are_listed_and_called_through_the_catalog_as_mcp_calls()
    {
        var (workspace, _) = await WorkspaceWithAgentAsync();
        fixture.Catalog.Offer(workspace);
        var key = await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall);
        var keyId = (await (await _app.KeyClient(key).GetAsync("/api/v1/me")).ReadAsync<JsonElement>()).GetProperty("id").GetGuid();
        await using var client = await ConnectAsync(_app.KeyClient(key));

        var echo = (await client.ListToolsAsync()).Single(t => t.Name == "everything__echo");
        Assert.Contains("message", echo.JsonSchema.GetProperty("properties").EnumerateObject().Select(p => p.Name));
        var result = await client.CallToolAsync("everything__echo", new Dictionary<string, object?> { ["message"] = "over the bridge" });
        Assert.NotEqual(true, result.IsError);
        Assert.Contains("over the bridge", Assert.IsType<TextContentBlock>(result.Content[0]).Text);
        var (tool, caller) = fixture.Catalog.Calls.Last(c => c.Caller.WorkspaceId == workspace);
        Assert.Equal("everything__echo", tool.QualifiedName);
        Assert.Equal(ToolCaller.ViaMcp, caller.Via);
        Assert.Equal(keyId, caller.KeyId);

        Assert.Contains("message", await ToolErrorAsync(client, "everything__echo", new()));
        // A key without any of the platform scopes gets only the bridged tools.
        Assert.DoesNotContain((await client.ListToolsAsync()).Select(t => t.Name), PlatformTools.Contains);
    }

    [Fact]
    public async Task Every_tool_call_is_audited_with_argument_names_and_never_their_values()
    {
        var (workspace, agent) = await WorkspaceWithAgentAsync();
        var viewer = _app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall, ApiKeyScopes.TasksRead));
        await using (var client = await ConnectAsync(_app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, MemberScopes))))
        {
            await CallAsync(client, "create_task", new() { ["agentId"] = agent, ["input"] = "secret-value-123" });
        }
        await using (var client = await ConnectAsync(viewer))
        {
            await ToolErrorAsync(client, "create_task", new() { ["agentId"] = agent, ["input"] = "secret-value-456" });
        }

        var events = (await (await fixture.Client.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=tool.call")).ReadAsync<JsonElement>())
            .GetProperty("items").EnumerateArray().ToList();
        var success = Assert.Single(events, e => e.GetProperty("outcome").GetString() == AuditOutcomes.Success);
        Assert.Equal("create_task", success.GetProperty("target").GetString());
        var detail = success.GetProperty("detail");
        Assert.Equal("mcp", detail.GetProperty("via").GetString());
        Assert.Equal(["agentId", "input"], detail.GetProperty("arguments").EnumerateArray().Select(a => a.GetString()!).Order().ToArray());
        var denied = Assert.Single(events, e => e.GetProperty("outcome").GetString() == AuditOutcomes.Denied);
        Assert.Equal("create_task", denied.GetProperty("target").GetString());
        Assert.DoesNotContain(events, e => e.GetRawText().Contains("secret-value", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mcp_requests_draw_from_the_callers_api_bucket_and_get_429_with_Retry_After()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:RateLimits:Api:PermitsPerPeriod"] = "1", ["Agentry:RateLimits:Api:Period"] = "00:01:00", ["Agentry:RateLimits:Api:Burst"] = "3",
        });
        var workspace = await app.CreateWorkspaceAsync();
        var key = app.KeyClient(await AgentryApp.CreateApiKeyAsync(await app.AdminClientAsync(), workspace, ApiKeyScopes.ToolsCall));

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 5; i++)
        {
            var response = await PostListAsync(key);
            statuses.Add(response.StatusCode);
            refused ??= response.StatusCode == HttpStatusCode.TooManyRequests ? response : null;
        }
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
        await refused!.AssertProblemAsync(HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.InRange(int.Parse(Assert.Single(refused!.Headers.GetValues("Retry-After"))), 1, 60);
    }

    [Fact]
    public async Task Search_knowledge_finds_the_chunks_the_rest_search_finds_and_only_in_the_callers_workspace()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var admin = await _app.UserClientAsync(workspace, Roles.Admin);
        var collection = await admin.CreateCollectionAsync();
        var otter = await admin.AddAsync(collection.Id, "otters.md", "# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.");
        var kelp = await admin.AddAsync(collection.Id, "kelp.md", "# Kelp\n\nGiant kelp grows up to half a metre a day in cold coastal water.");
        Assert.Equal("ready", (await admin.SettledAsync(collection.Id, otter.Id)).Status);
        Assert.Equal("ready", (await admin.SettledAsync(collection.Id, kelp.Id)).Status);
        var rest = await admin.SearchAsync(collection.Id, "why do otters hold hands", "hybrid", topK: 2);

        await using var client = await ConnectAsync(_app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, [ApiKeyScopes.ToolsCall, ApiKeyScopes.KnowledgeRead])));
        var found = await CallAsync(client, "search_knowledge", new() { ["collectionId"] = collection.Id, ["query"] = "why do otters hold hands", ["topK"] = 2 });
        Assert.Equal("hybrid", found.GetProperty("mode").GetString());
        var hits = found.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(rest.Results.Select(h => h.ChunkId), hits.Select(h => h.GetProperty("chunkId").GetGuid()));
        Assert.Equal(otter.Id, hits[0].GetProperty("documentId").GetGuid());
        Assert.Contains("hold hands", hits[0].GetProperty("text").GetString());

        var onlyKelp = await CallAsync(client, "search_knowledge", new()
        {
            ["collectionId"] = collection.Id, ["query"] = "otters", ["mode"] = "keyword", ["documentIds"] = new[] { kelp.Id },
        });
        Assert.All(onlyKelp.GetProperty("results").EnumerateArray(), h => Assert.Equal(kelp.Id, h.GetProperty("documentId").GetGuid()));

        Assert.Contains("mode", await ToolErrorAsync(client, "search_knowledge", new() { ["collectionId"] = collection.Id, ["query"] = "x", ["mode"] = "fuzzy" }));
        Assert.Contains("query", await ToolErrorAsync(client, "search_knowledge", new() { ["collectionId"] = collection.Id }));

        // Another workspace's key cannot reach the collection, and a key without knowledge:read does not get the tool.
        var other = await _app.CreateWorkspaceAsync();
        await using var stranger = await ConnectAsync(_app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, other, [ApiKeyScopes.ToolsCall, ApiKeyScopes.KnowledgeRead])));
        Assert.Contains("not found", await ToolErrorAsync(stranger, "search_knowledge", new() { ["collectionId"] = collection.Id, ["query"] = "otters" }));
        await using var toolsOnly = await ConnectAsync(_app.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.ToolsCall)));
        Assert.DoesNotContain("search_knowledge", (await toolsOnly.ListToolsAsync()).Select(t => t.Name));
    }

    private async Task<(Guid Workspace, Guid Agent)> WorkspaceWithAgentAsync()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        return (workspace, await CreateAgentAsync(workspace, "llm"));
    }

    private async Task<Guid> CreateAgentAsync(Guid workspace, string kind)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/agents")
        {
            Content = HttpAssertions.Json(kind == "llm"
                ? new { name = $"agent-{Guid.NewGuid():N}"[..20], kind, model = "local/tiny", systemPrompt = "You are brief." }
                : (object)new { name = $"agent-{Guid.NewGuid():N}"[..20], kind, tool = "everything__echo" }),
        };
        request.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        return (await (await fixture.Client.SendAsync(request)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
    }

    /// <summary>A raw tools/list over HTTP, for what the SDK client does not show: the status and headers of a refusal.</summary>
    private static Task<HttpResponseMessage> PostListAsync(HttpClient http)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp")
        {
            Content = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return http.SendAsync(request);
    }
}
