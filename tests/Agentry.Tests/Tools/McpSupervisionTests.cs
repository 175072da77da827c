using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static Agentry.Tests.Tools.McpApi;

namespace Agentry.Tests.Tools;

/// <summary>How this node runs MCP servers: on demand, one process per server, restarted, timed out, replaced on change, stopped with the host.</summary>
public sealed class McpSupervisionTests(McpFixture fixture) : IClassFixture<McpFixture>
{
    private readonly AgentryApp _app = fixture.App;

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
    public async Task Stderr_goes_to_the_log_no_secret_does_at_any_level_and_stopping_the_host_stops_the_processes()
    {
        var marker = $"MARKER_{Guid.NewGuid():N}";
        const string secret = "log-secret-value-789";
        var logs = new CapturedLogs();
        var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Trace" }, services => services.AddSingleton<ILoggerProvider>(logs));
        try
        {
            var client = await app.AdminClientAsync();
            var workspace = await app.CreateWorkspaceAsync();
            client.DefaultRequestHeaders.Add("Agentry-Workspace", workspace.ToString());
            await CreateAsync(client, Everything("stopping", new() { ["MARK"] = marker, ["SECRET_TOKEN"] = secret }));
            Assert.Equal("Echo: up", await TextAsync(client, "stopping", "echo", new { message = "up" }));
            Assert.Single(McpTestServers.ChildrenWith(McpTestServers.Everything, marker));
            Assert.True(await HttpAssertions.EventuallyAsync(
                () => Task.FromResult(logs.Entries.Any(e => e.Text.Contains("MCP server stopping stderr: Starting default (STDIO) server", StringComparison.Ordinal))),
                TimeSpan.FromSeconds(5)));
        }
        finally
        {
            await app.DisposeAsync();
        }
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(McpTestServers.ChildrenWith(McpTestServers.Everything, marker).Count == 0), TimeSpan.FromSeconds(5)));
        Assert.DoesNotContain(logs.Entries, e => e.Text.Contains(secret, StringComparison.Ordinal));
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
