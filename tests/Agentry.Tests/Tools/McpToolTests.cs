using System.Net;
using System.Text.Json;
using Agentry.Data;
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
    public async Task Every_call_is_counted_and_timed_by_server_tool_and_outcome()
    {
        var measurements = new System.Collections.Concurrent.ConcurrentQueue<(string Instrument, string Tool, string Outcome)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name is "tool_calls_total" or "tool_call_duration_seconds")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(System.Diagnostics.Metrics.Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var values = tags.ToArray().ToDictionary(t => t.Key, t => t.Value as string);
            if (values.GetValueOrDefault("server") == "counted")
            {
                measurements.Enqueue((instrument.Name, values["tool"]!, values["outcome"]!));
            }
        }
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) => Record(instrument, tags));
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) => Record(instrument, tags));
        listener.Start();

        var (_, client) = await WorkspaceAsync(_app);
        await CreateAsync(client, Everything("counted"));
        await TextAsync(client, "counted", "echo", new { message = "one" });
        await (await CallAsync(client, "counted", "echo", new { })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        Assert.Contains(("tool_calls_total", "echo", "ok"), measurements);
        Assert.Contains(("tool_call_duration_seconds", "echo", "ok"), measurements);
        Assert.Contains(("tool_calls_total", "echo", "invalid_arguments"), measurements);
    }
}
