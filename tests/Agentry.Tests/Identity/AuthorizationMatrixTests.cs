using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Identity;

/// <summary>
/// Every endpoint the app maps × every kind of caller. Which calls must be refused is read from the
/// access rules declared on the endpoints themselves (scope, workspace role, platform administrator),
/// so a new endpoint is covered the moment it is mapped; one with a route value or body this test
/// cannot fill in fails it until a sample is added here.
/// </summary>
public sealed class AuthorizationMatrixTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private readonly AgentryApp _app = fixture.App;

    /// <summary>Outside /api and /v1 (the OpenAI-compatible API, checked like /api) only these may be called without a token.</summary>
    private static readonly string[] AnonymousOutsideApi =
        ["/health", "/health/ready", "/metrics", "/openapi/{documentName}.json", "/connect/token"];

    /// <summary>A valid body per endpoint name, so a refusal is about who calls, not what is sent.</summary>
    private static readonly Dictionary<string, object> Bodies = new()
    {
        ["CreateWorkspace"] = new { name = "matrix", slug = "matrix-" + Guid.NewGuid().ToString("N")[..8] },
        ["UpdateWorkspace"] = new { name = "renamed" },
        ["SetMember"] = new { role = Roles.Member },
        ["CreateUser"] = new { email = $"m-{Guid.NewGuid():N}@agentry.test", displayName = "M", password = "matrix-password-1" },
        ["UpdateUser"] = new { displayName = "renamed" },
        ["CreateApiKey"] = new { name = "matrix", scopes = new[] { ApiKeyScopes.Chat } },
        ["CreateServiceAccount"] = new { name = "matrix", scopes = new[] { ApiKeyScopes.Chat } },
        ["CreateAgent"] = new { name = "matrix-" + Guid.NewGuid().ToString("N")[..8], kind = "tool", tool = "matrix__noop" },
        ["UpdateAgent"] = new { description = "changed" },
        ["SubmitTask"] = new { agentId = Guid.Empty, input = new { } },
        ["SubmitTaskBatch"] = new { tasks = new[] { new { agentId = Guid.Empty } } },
        ["CancelTask"] = new { },
        ["ApproveToolCall"] = new { reason = "matrix" },
        ["DenyToolCall"] = new { reason = "matrix" },
        ["RequeueTask"] = new { },
        ["DiscardTask"] = new { },
        ["CreateSchedule"] = new { name = "matrix", agentId = Guid.Empty, cron = "0 0 1 1 *" },
        ["UpdateSchedule"] = new { enabled = false },
        ["CreateConversation"] = new { model = "local/tiny" },
        ["PostConversationMessage"] = new { content = "hello" },
        ["UpdateConversation"] = new { title = "renamed" },
        ["CancelConversationReply"] = new { },
        ["Chat"] = new { message = "hello", model = "local/tiny" },
        ["OpenAiCreateChatCompletion"] = new { model = "none/none", messages = new[] { new { role = "user", content = "hi" } } },
        ["OpenAiCreateEmbedding"] = new { model = "minilm/all-minilm-l6-v2", input = "hi" },
        ["CreateMcpServer"] = new { name = "matrix-" + Guid.NewGuid().ToString("N")[..8], transport = "stdio", command = "/bin/true" },
        ["UpdateMcpServer"] = new { callTimeoutSeconds = 10 },
        ["CallTool"] = new { arguments = new { } },
        ["ImportAgent"] = new { agentry = "agent/v1", name = "imported-" + Guid.NewGuid().ToString("N")[..8], kind = "tool", tool = "matrix__noop" },
        ["/mcp/"] = new { jsonrpc = "2.0", id = 1, method = "tools/list" },
        ["CreateCollection"] = new { name = "matrix" },
        ["UpdateCollection"] = new { description = "changed" },
        ["AddDocument"] = new { url = "http://10.1.2.3/a.txt" },
        ["SearchCollection"] = new { query = "matrix" },
    };

    private sealed record Principal(string Name, HttpClient? Client, string? Role, bool IsKey = false, string[]? Scopes = null);

    [Fact]
    public async Task No_caller_gets_a_2xx_the_endpoint_rules_forbid_and_every_endpoint_is_documented()
    {
        var admin = fixture.Client;
        var workspace = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        var (victim, _, _) = await _app.CreateUserAsync(workspace, Roles.Member);
        var key = await AgentryApp.CreateApiKeyAsync(admin, workspace, ApiKeyScopes.AgentsRead);
        var keyId = (await (await _app.KeyClient(key).GetAsync("/api/v1/me")).ReadAsync<MeResponse>()).Id;
        var account = (await (await admin.PostJsonAsync($"/api/v1/workspaces/{workspace}/service-accounts", Bodies["CreateServiceAccount"]))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetString()!;
        using var inWorkspace = new HttpRequestMessage(HttpMethod.Post, "/api/v1/agents") { Content = HttpAssertions.Json(new { name = "matrix agent", kind = "tool", tool = "matrix__noop" }) };
        inWorkspace.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        var agent = (await (await admin.SendAsync(inWorkspace)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetString()!;
        using var serverInWorkspace = new HttpRequestMessage(HttpMethod.Post, "/api/v1/mcp-servers") { Content = HttpAssertions.Json(new { name = "matrix", transport = "stdio", command = "/bin/true" }) };
        serverInWorkspace.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        var mcpServer = (await (await admin.SendAsync(serverInWorkspace)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetString()!;
        using var collectionInWorkspace = new HttpRequestMessage(HttpMethod.Post, "/api/v1/collections") { Content = HttpAssertions.Json(new { name = "matrix" }) };
        collectionInWorkspace.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        var collection = (await (await admin.SendAsync(collectionInWorkspace)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetString()!;
        using var documentInCollection = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/collections/{collection}/documents")
        {
            Content = new MultipartFormDataContent { { new StringContent("# Matrix\n\nA document to read."), "file", "matrix.md" } },
        };
        documentInCollection.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        var document = (await (await admin.SendAsync(documentInCollection)).ReadAsync<JsonElement>(HttpStatusCode.Accepted))
            .GetProperty("document").GetProperty("id").GetString()!;
        // A task to read; written directly, since no agent kind this test can make runs without a server to call.
        var task = await _app.InsertTaskAsync(workspace, Guid.Parse(agent));
        var schedule = await _app.InsertScheduleAsync(workspace, Guid.Parse(agent));
        var approval = await _app.InsertApprovalAsync(workspace, task, Guid.Parse(agent));
        var conversation = await InsertConversationAsync(workspace);
        Principal[] principals =
        [
            new("anonymous", null, null),
            new("viewer", await _app.UserClientAsync(workspace, Roles.Viewer), Roles.Viewer),
            new("member", await _app.UserClientAsync(workspace, Roles.Member), Roles.Member),
            new("admin", await _app.UserClientAsync(workspace, Roles.Admin), Roles.Admin),
            new("other workspace's admin", await _app.UserClientAsync(other, Roles.Admin), null),
            new("API key with only 'chat'", _app.KeyClient(await AgentryApp.CreateApiKeyAsync(admin, workspace, ApiKeyScopes.Chat)),
                ApiKeyScopes.RoleFor([ApiKeyScopes.Chat]), IsKey: true, Scopes: [ApiKeyScopes.Chat]),
        ];
        var values = new Dictionary<string, string>
        {
            ["workspaces.id"] = workspace.ToString(),
            ["users.id"] = victim.ToString(),
            ["workspaceId"] = workspace.ToString(),
            ["userId"] = victim.ToString(),
            ["keyId"] = keyId.ToString(),
            ["accountId"] = account,
            ["agents.id"] = agent,
            ["version"] = "1",
            ["tasks.id"] = task.ToString(),
            ["schedules.id"] = schedule.ToString(),
            ["approvals.id"] = approval.ToString(),
            ["conversations.id"] = conversation.ToString(),
            ["mcp-servers.id"] = mcpServer,
            ["server"] = "matrix",
            ["tool"] = "echo",
            ["collections.id"] = collection,
            ["documentId"] = document,
        };
        var openApi = JsonDocument.Parse(await admin.GetStringAsync("/openapi/v1.json")).RootElement.GetProperty("paths");

        var endpoints = Endpoints();
        var failures = new List<string>();
        var checkedCalls = 0;
        foreach (var (endpoint, method) in endpoints)
        {
            var pattern = endpoint.RoutePattern.RawText!;
            // The MCP endpoint is JSON-RPC, not REST: checked like the API, but documented in docs/mcp-server.md, not OpenAPI.
            var isMcp = pattern.StartsWith("/mcp", StringComparison.Ordinal);
            if (!pattern.StartsWith("/api/", StringComparison.Ordinal) && !pattern.StartsWith("/v1/", StringComparison.Ordinal) && !isMcp)
            {
                Assert.Contains(pattern, AnonymousOutsideApi);
                continue;
            }
            var documentedPath = Normalize(pattern);
            Assert.True(isMcp || (openApi.TryGetProperty(documentedPath, out var path) && path.TryGetProperty(method.ToLowerInvariant(), out _)),
                $"{method} {pattern} is missing from the OpenAPI document");

            var url = Fill(endpoint, values);
            var name = endpoint.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? pattern;
            object? body = null;
            if (method is "POST" or "PUT" or "PATCH")
            {
                Assert.True(Bodies.TryGetValue(name, out body), $"Add a sample body for {name} ({method} {pattern}) to this test.");
            }
            foreach (var principal in principals)
            {
                var refusal = Refusal(endpoint, principal);
                if (refusal is null && method != "GET")
                {
                    continue; // allowed writes would change the fixtures; allowed reads are checked below
                }
                if (name == "ConnectWebSocket")
                {
                    // A WebSocket is only ever an upgrade: the handshake's status (101 when allowed) is what the rules decide.
                    var upgraded = await UpgradeStatusAsync(principal.Client, workspace);
                    checkedCalls++;
                    if (refusal is { } refused ? !refused.Contains(upgraded) : upgraded != 101)
                    {
                        failures.Add($"{principal.Name}: WebSocket {url} answered {upgraded}");
                    }
                    continue;
                }
                var client = principal.Client ?? _app.Client();
                using var request = new HttpRequestMessage(new HttpMethod(method), url);
                if (body is not null)
                {
                    request.Content = HttpAssertions.Json(body);
                }
                // A route that names no workspace acts in the one the header names (see CurrentWorkspace).
                if (endpoint.Metadata.GetMetadata<WorkspaceRoleRequirement>() is { RouteValue: null })
                {
                    request.Headers.Add(CurrentWorkspace.HeaderName, workspace.ToString());
                }
                var status = (int)(await client.SendAsync(request)).StatusCode;
                checkedCalls++;
                if (refusal is { } expected && !expected.Contains(status))
                {
                    failures.Add($"{principal.Name}: {method} {url} answered {status}, expected one of {string.Join('/', expected)}");
                }
                if (refusal is null && status is < 200 or > 299)
                {
                    failures.Add($"{principal.Name}: {method} {url} answered {status} though the rules allow it");
                }
            }
        }

        Assert.True(endpoints.Count > 10, "the endpoint list looks wrong");
        Assert.True(checkedCalls > endpoints.Count, "too few calls were made");
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private async Task<int> UpgradeStatusAsync(HttpClient? client, Guid workspace)
    {
        try
        {
            await using var socket = await Agentry.Tests.Sockets.SocketClient.ConnectAsync(_app, client, workspace);
            return 101;
        }
        catch (InvalidOperationException)
        {
            return await Agentry.Tests.Sockets.SocketClient.RefusalAsync(_app, client, workspace);
        }
    }

    /// <summary>A conversation to read, written directly: this app has no model to create one with.</summary>
    private async Task<Guid> InsertConversationAsync(Guid workspace)
    {
        await using var scope = _app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Agentry.Data.AppDbContext>();
        var conversation = new Agentry.Chat.Conversation
        {
            Id = Guid.CreateVersion7(), WorkspaceId = workspace, Model = "local/tiny", CreatedAt = DateTime.UtcNow, UpdatedAt = DateTime.UtcNow,
        };
        db.Conversations.Add(conversation);
        await db.SaveChangesAsync();
        return conversation.Id;
    }

    /// <summary>The statuses a refused call may get, or null when the rules allow it.</summary>
    private static int[]? Refusal(RouteEndpoint endpoint, Principal principal)
    {
        if (principal.Client is null)
        {
            return [401];
        }
        var metadata = endpoint.Metadata;
        if (metadata.GetMetadata<PlatformAdminRequirement>() is not null)
        {
            return [403];
        }
        var scopes = metadata.GetOrderedMetadata<ScopeRequirement>();
        if (principal.IsKey && scopes.Any(s => !ApiKeyScopes.Grants(principal.Scopes!, s.Scope)))
        {
            return [403, 404];
        }
        if (metadata.GetMetadata<WorkspaceRoleRequirement>() is { } rule)
        {
            if (principal.Role is null)
            {
                return [404];
            }
            if (!Roles.Satisfies(principal.Role, rule.Role))
            {
                return [403];
            }
        }
        return null;
    }

    private List<(RouteEndpoint Endpoint, string Method)> Endpoints() =>
        _app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (e, m)))
            .Where(x => !x.e.RoutePattern.RawText!.StartsWith("/docs", StringComparison.Ordinal))
            .ToList();

    private static string Fill(RouteEndpoint endpoint, Dictionary<string, string> values)
    {
        var pattern = endpoint.RoutePattern;
        var rule = endpoint.Metadata.GetMetadata<WorkspaceRoleRequirement>();
        var resource = pattern.RawText!.Split('/', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(2);
        var url = pattern.RawText!;
        foreach (var parameter in pattern.Parameters)
        {
            var value = values.GetValueOrDefault($"{resource}.{parameter.Name}") ?? values.GetValueOrDefault(parameter.Name)
                ?? throw new InvalidOperationException($"Add a value for route parameter '{parameter.Name}' of {pattern.RawText} to this test.");
            url = System.Text.RegularExpressions.Regex.Replace(url, $@"\{{{parameter.Name}(:[^}}]*)?\}}", value);
        }
        // A workspace named in the query string rather than the route (e.g. the audit log).
        if (rule is { RouteValue: { } named } && pattern.GetParameter(named) is null)
        {
            url += $"?{named}={values[named]}";
        }
        return url;
    }

    private static string Normalize(string pattern)
    {
        var path = System.Text.RegularExpressions.Regex.Replace(pattern, @"\{(\w+)(:[^}]*)?\}", "{$1}");
        return path.Length > 1 ? path.TrimEnd('/') : path;
    }
}
