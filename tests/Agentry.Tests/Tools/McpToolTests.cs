using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Tools;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using static Agentry.Tests.Tools.McpApi;

namespace Agentry.Tests.Tools;

/// <summary>Registered MCP servers, their catalog and governed calls, against the real reference servers from npm.</summary>
public sealed class McpToolTests(McpFixture fixture) : IClassFixture<McpFixture>
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task A_registered_stdio_server_lists_its_tools_and_answers_calls()
    {
        var (workspace, client) = await WorkspaceAsync(_app);
        var server = await CreateAsync(client, Everything());
        Assert.Equal("idle", server.GetProperty("status").GetProperty("state").GetString());

        var tools = await (await client.GetAsync("/api/v1/tools?server=everything")).ReadAsync<JsonElement>();
        var echo = tools.GetProperty("items").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "echo");
        Assert.Equal("everything__echo", echo.GetProperty("qualifiedName").GetString());
        Assert.Equal("string", echo.GetProperty("inputSchema").GetProperty("properties").GetProperty("message").GetProperty("type").GetString());
        Assert.False(echo.GetProperty("requiresApproval").GetBoolean());
        Assert.Contains(tools.GetProperty("items").EnumerateArray(), t => t.GetProperty("name").GetString() == "get-sum");

        Assert.Equal("Echo: hello tools", await TextAsync(client, "everything", "echo", new { message = "hello tools" }));
        Assert.Contains("5", await TextAsync(client, "everything", "get-sum", new { a = 2, b = 3 }));

        var status = await StatusAsync(client, server.GetProperty("id").GetGuid());
        Assert.Equal("running", status.GetProperty("state").GetString());
        Assert.True(status.GetProperty("toolCount").GetInt32() >= 10, status.ToString());
        Assert.NotEqual(JsonValueKind.Null, status.GetProperty("startedAt").ValueKind);

        var audit = await (await client.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=tool.call")).ReadAsync<JsonElement>();
        var call = audit.GetProperty("items").EnumerateArray().First(e => e.GetProperty("target").GetString() == "everything__echo");
        Assert.Equal("success", call.GetProperty("outcome").GetString());
        var detail = call.GetProperty("detail");
        Assert.Equal("api", detail.GetProperty("via").GetString());
        Assert.Equal(["message"], detail.GetProperty("arguments").EnumerateArray().Select(a => a.GetString()));
        Assert.DoesNotContain("hello tools", call.ToString()); // argument names, never values
    }

    [Fact]
    public async Task Bad_arguments_are_a_400_per_location_and_unknown_tools_a_404()
    {
        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, Everything());

        var missing = await (await CallAsync(client, "everything", "echo", new { })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(missing.GetProperty("errors").TryGetProperty("arguments", out _), missing.ToString());
        var wrongType = await (await CallAsync(client, "everything", "get-sum", new { a = "two", b = 3 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(wrongType.GetProperty("errors").TryGetProperty("arguments/a", out _), wrongType.ToString());
        var notObject = await client.PostJsonAsync("/api/v1/tools/everything/echo/call", new { arguments = new[] { 1 } });
        await notObject.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        await (await CallAsync(client, "everything", "no-such-tool", new { })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await CallAsync(client, "nowhere", "echo", new { message = "x" })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task A_crashed_server_is_restarted_and_the_next_call_works()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var marker = $"MARKER_{Guid.NewGuid():N}";
        var server = await CreateAsync(client, Everything("crashy", new() { ["CRASH_MARKER"] = marker }));
        Assert.Equal("Echo: before", await TextAsync(client, "crashy", "echo", new { message = "before" }));

        var pid = Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
        using (var child = Process.GetProcessById(pid))
        {
            child.Kill();
            await child.WaitForExitAsync();
        }

        var id = server.GetProperty("id").GetGuid();
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            var status = await StatusAsync(client, id);
            return status.GetProperty("state").GetString() == "running" && status.GetProperty("restartCount").GetInt32() >= 1;
        }, TimeSpan.FromSeconds(20)), (await StatusAsync(client, id)).ToString());
        Assert.Equal("Echo: after", await TextAsync(client, "crashy", "echo", new { message = "after" }));
        var restarted = Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
        Assert.NotEqual(pid, restarted);
    }

    [Fact]
    public async Task A_call_longer_than_the_timeout_is_a_504_and_the_server_stays_usable()
    {
        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, Everything("slow", callTimeoutSeconds: 1));
        Assert.Equal("Echo: warm", await TextAsync(client, "slow", "echo", new { message = "warm" }));

        var watch = Stopwatch.StartNew();
        var response = await CallAsync(client, "slow", "trigger-long-running-operation", new { duration = 10, steps = 5 });
        await response.AssertProblemAsync(HttpStatusCode.GatewayTimeout, "tool_timeout");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");

        Assert.Equal("Echo: still here", await TextAsync(client, "slow", "echo", new { message = "still here" }));
    }

    [Fact]
    public async Task A_stdio_server_gets_only_its_configured_environment_and_a_minimal_path_and_home()
    {
        Environment.SetEnvironmentVariable("AGENTRY_TEST_CANARY_SECRET", "do-not-leak");
        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, Everything("envy", new() { ["GREETING"] = "hello" }));

        var environment = JsonDocument.Parse(await TextAsync(client, "envy", "get-env", new { })).RootElement;
        var names = environment.EnumerateObject().Select(p => p.Name).Order().ToArray();
        Assert.Equal(["GREETING", "HOME", "PATH"], names);
        Assert.Equal("hello", environment.GetProperty("GREETING").GetString());
        Assert.Equal(new ToolsOptions().ChildPath, environment.GetProperty("PATH").GetString());
        Assert.True(Directory.Exists(environment.GetProperty("HOME").GetString()));
    }

    [Fact]
    public async Task Another_workspace_can_neither_see_nor_call_the_servers()
    {
        var (_, owner) = await WorkspaceAsync(_app);
        var server = await CreateAsync(owner, Everything("private"));
        Assert.Equal("Echo: mine", await TextAsync(owner, "private", "echo", new { message = "mine" }));

        var (_, other) = await WorkspaceAsync(_app);
        Assert.Empty((await (await other.GetAsync("/api/v1/tools")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Empty((await (await other.GetAsync(Servers)).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        await (await other.GetAsync($"{Servers}/{server.GetProperty("id").GetGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await CallAsync(other, "private", "echo", new { message = "theirs" })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await other.DeleteAsync($"{Servers}/{server.GetProperty("id").GetGuid()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task A_streamable_http_server_is_reached_with_its_headers_which_are_never_shown()
    {
        await using var remote = await EverythingHttpServer.StartAsync();
        var (_, client) = await WorkspaceAsync(_app);
        const string secret = "header-secret-value-123";
        var response = await client.PostJsonAsync(Servers, new { name = "remote", transport = "http", url = remote.Url, headers = new Dictionary<string, string> { ["X-Api-Key"] = secret } });
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.DoesNotContain(secret, body);
        Assert.Equal(["X-Api-Key"], JsonDocument.Parse(body).RootElement.GetProperty("headers").EnumerateArray().Select(h => h.GetString()));

        Assert.Contains((await (await client.GetAsync("/api/v1/tools?server=remote")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray(),
            t => t.GetProperty("qualifiedName").GetString() == "remote__echo");
        Assert.Equal("Echo: over http", await TextAsync(client, "remote", "echo", new { message = "over http" }));
        Assert.DoesNotContain(secret, await (await client.GetAsync(Servers)).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_filesystem_server_writes_and_reads_files_in_its_directory()
    {
        var directory = TempFiles.Directory();
        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, new { name = "files", transport = "stdio", command = McpTestServers.Node, args = new[] { McpTestServers.Filesystem, directory } });
        var file = Path.Combine(directory, "note.txt");

        await TextAsync(client, "files", "write_file", new { path = file, content = "written through Agentry" });
        Assert.Equal("written through Agentry", await File.ReadAllTextAsync(file));
        Assert.Equal("written through Agentry", await TextAsync(client, "files", "read_text_file", new { path = file }));
        var outside = await (await CallAsync(client, "files", "read_text_file", new { path = "/etc/hostname" })).ReadAsync<JsonElement>();
        Assert.True(outside.GetProperty("isError").GetBoolean(), outside.ToString());
    }

    [Fact]
    public async Task Environment_values_are_sealed_at_rest_never_returned_and_kept_by_a_change_that_leaves_them_out()
    {
        var (workspace, client) = await WorkspaceAsync(_app);
        const string secret = "env-secret-value-456";
        var response = await client.PostJsonAsync(Servers, Everything("sealed", new() { ["API_TOKEN"] = secret }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.DoesNotContain(secret, body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();
        Assert.Equal(["API_TOKEN"], JsonDocument.Parse(body).RootElement.GetProperty("environment").EnumerateArray().Select(e => e.GetString()));

        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var row = await scope.ServiceProvider.GetRequiredService<AppDbContext>().McpServers.SingleAsync(s => s.Id == id);
            Assert.DoesNotContain(secret, System.Text.Encoding.UTF8.GetString(row.Secrets));
            Assert.DoesNotContain(secret, row.Definition);
        }

        var patched = await client.PatchAsync($"{Servers}/{id}", HttpAssertions.Json(new { callTimeoutSeconds = 20 }));
        Assert.DoesNotContain(secret, await patched.Content.ReadAsStringAsync());
        var environment = JsonDocument.Parse(await TextAsync(client, "sealed", "get-env", new { })).RootElement;
        Assert.Equal(secret, environment.GetProperty("API_TOKEN").GetString());

        Assert.DoesNotContain(secret, await (await client.GetAsync($"{Servers}/{id}")).Content.ReadAsStringAsync());
        Assert.DoesNotContain(secret, await (await client.GetAsync($"/api/v1/audit?workspaceId={workspace}")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_change_restarts_the_session_with_the_new_configuration_and_a_delete_stops_the_process()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var marker = $"MARKER_{Guid.NewGuid():N}";
        var server = await CreateAsync(client, Everything("changing", new() { ["MARK"] = marker, ["COLOUR"] = "red" }));
        var id = server.GetProperty("id").GetGuid();
        Assert.Equal("red", JsonDocument.Parse(await TextAsync(client, "changing", "get-env", new { })).RootElement.GetProperty("COLOUR").GetString());

        var patched = await client.PatchAsync($"{Servers}/{id}", HttpAssertions.Json(new { environment = new Dictionary<string, string> { ["MARK"] = marker, ["COLOUR"] = "blue" } }));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("blue", JsonDocument.Parse(await TextAsync(client, "changing", "get-env", new { })).RootElement.GetProperty("COLOUR").GetString());
        Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Servers}/{id}")).StatusCode);
        Assert.Empty(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
        await (await CallAsync(client, "changing", "echo", new { message = "gone" })).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task Concurrent_first_calls_start_one_process()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var marker = $"MARKER_{Guid.NewGuid():N}";
        await CreateAsync(client, Everything("together", new() { ["MARK"] = marker }));

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => TextAsync(client, "together", "echo", new { message = $"n{i}" })));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => $"Echo: n{i}"), answers);
        Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
    }

    [Fact]
    public async Task Agent_tools_are_functions_with_the_real_schema_that_call_the_server_through_the_catalog()
    {
        var (workspace, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, Everything("agentic"));
        var tools = _app.Services.GetRequiredService<IAgentTools>();
        var taskId = Guid.CreateVersion7();
        var caller = new ToolCaller(workspace, null, null, Guid.CreateVersion7(), taskId, ToolCaller.ViaAgent);

        var functions = await tools.FindAsync(caller, ["agentic__echo", "agentic__nope", "elsewhere__echo", "no-separator"], CancellationToken.None);
        var echo = Assert.Single(functions);
        Assert.Equal("agentic__echo", echo.Name);
        Assert.Equal("Echoes back the input string", echo.Description);
        Assert.Equal("string", echo.JsonSchema.GetProperty("properties").GetProperty("message").GetProperty("type").GetString());

        var result = await echo.InvokeAsync(new AIFunctionArguments { ["message"] = "from an agent" });
        Assert.Contains("Echo: from an agent", JsonSerializer.Serialize(result));

        var audit = await (await client.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=tool.call")).ReadAsync<JsonElement>();
        var detail = audit.GetProperty("items")[0].GetProperty("detail");
        Assert.Equal(("agent", taskId), (detail.GetProperty("via").GetString(), detail.GetProperty("taskId").GetGuid()));
    }

    [Fact]
    public async Task A_server_that_cannot_start_contributes_no_tools_shows_why_and_calls_are_a_503()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var server = await CreateAsync(client, new { name = "broken", transport = "stdio", command = "/nonexistent/mcp-server" });
        await CreateAsync(client, Everything("working"));

        var tools = (await (await client.GetAsync("/api/v1/tools")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();
        Assert.NotEmpty(tools);
        Assert.All(tools, t => Assert.Equal("working", t.GetProperty("server").GetString()));

        var status = await StatusAsync(client, server.GetProperty("id").GetGuid());
        Assert.Contains(status.GetProperty("state").GetString(), new[] { "backoff", "starting", "failed" });
        Assert.False(string.IsNullOrEmpty(status.GetProperty("lastError").GetString()), status.ToString());

        var call = await CallAsync(client, "broken", "echo", new { message = "x" });
        await call.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "service_unavailable");
        Assert.NotNull(call.Headers.RetryAfter);
    }

    [Fact]
    public async Task The_catalog_follows_a_server_that_says_its_tool_list_changed()
    {
        var directory = TempFiles.Directory();
        var script = Path.Combine(directory, "list-changing.mjs");
        await File.WriteAllTextAsync(script, ListChangingServer);
        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, new { name = "growing", transport = "stdio", command = McpTestServers.Node, args = new[] { script, McpTestServers.Sdk } });

        async Task<string[]> NamesAsync() => [.. (await (await client.GetAsync("/api/v1/tools?server=growing")).ReadAsync<JsonElement>())
            .GetProperty("items").EnumerateArray().Select(t => t.GetProperty("name").GetString()!)];
        Assert.Equal(["add-tool"], await NamesAsync());

        Assert.Equal("extra-1", await TextAsync(client, "growing", "add-tool", new { }));
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await NamesAsync()).Contains("extra-1"), TimeSpan.FromSeconds(10)));
        Assert.Equal("extra-1 answers", await TextAsync(client, "growing", "extra-1", new { }));
    }

    [Fact]
    public async Task Tools_a_server_holds_for_approval_are_marked_in_the_catalog()
    {
        var (_, client) = await WorkspaceAsync(_app);
        var server = await CreateAsync(client, Everything("careful"));
        (await client.PatchAsync($"{Servers}/{server.GetProperty("id").GetGuid()}", HttpAssertions.Json(new { approvalTools = new[] { "echo" } }))).EnsureSuccessStatusCode();

        var tools = (await (await client.GetAsync("/api/v1/tools?server=careful")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray()
            .ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("requiresApproval").GetBoolean());
        Assert.True(tools["echo"]);
        Assert.False(tools["get-sum"]);

        (await client.PatchAsync($"{Servers}/{server.GetProperty("id").GetGuid()}", HttpAssertions.Json(new { requireApproval = true }))).EnsureSuccessStatusCode();
        var all = (await (await client.GetAsync("/api/v1/tools?server=careful")).ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray();
        Assert.All(all, t => Assert.True(t.GetProperty("requiresApproval").GetBoolean()));
    }

    [Fact]
    public async Task Stopping_the_host_stops_the_server_processes()
    {
        var marker = $"MARKER_{Guid.NewGuid():N}";
        var app = AgentryApp.Sqlite();
        try
        {
            var client = await app.AdminClientAsync();
            var workspace = await app.CreateWorkspaceAsync();
            client.DefaultRequestHeaders.Add("Agentry-Workspace", workspace.ToString());
            await CreateAsync(client, Everything("stopping", new() { ["MARK"] = marker }));
            Assert.Equal("Echo: up", await TextAsync(client, "stopping", "echo", new { message = "up" }));
            Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
        }
        finally
        {
            await app.DisposeAsync();
        }
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(McpTestServers.ChildrenWith(McpTestServers.Everything, marker).Count == 0), TimeSpan.FromSeconds(5)));
    }

    /// <summary>A real MCP server on the official TypeScript SDK whose <c>add-tool</c> registers a new tool (the SDK then sends <c>notifications/tools/list_changed</c>).</summary>
    private const string ListChangingServer = """
        const sdk = process.argv[2];
        const { McpServer } = await import(`${sdk}/dist/esm/server/mcp.js`);
        const { StdioServerTransport } = await import(`${sdk}/dist/esm/server/stdio.js`);
        const server = new McpServer({ name: "list-changing", version: "1.0.0" });
        let added = 0;
        server.registerTool("add-tool", { description: "Adds a tool named extra-N" }, async () => {
          const name = `extra-${++added}`;
          server.registerTool(name, { description: "An added tool" }, async () => ({ content: [{ type: "text", text: `${name} answers` }] }));
          return { content: [{ type: "text", text: name }] };
        });
        await server.connect(new StdioServerTransport());
        """;
}
