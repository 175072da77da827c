using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Tests.Tasks;
using Agentry.Tools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tools;

/// <summary>
/// An app on a database of its own, which a test can restart on the same database, with the OpenAI-protocol stand-in's
/// models (<c>standin/script</c> is a model whose replies the task input scripts: see <see cref="LlmStandIn"/>). The tools
/// are the MCP reference servers from npm, registered per workspace through <c>/api/v1/mcp-servers</c>.
/// </summary>
public abstract class ApprovalFixture : IAsyncLifetime
{
    private Dictionary<string, string?> _settings = null!;

    /// <summary>The storage settings of the app (a SQLite file, a PostgreSQL database), created once.</summary>
    protected abstract Task<Dictionary<string, string?>> StorageAsync();

    public AgentryApp App { get; private set; } = null!;

    public StandInServer StandIn { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        StandIn = await StandInServer.StartAsync(server =>
        {
            server.MapGet("/v1/models", () => Results.Text(LlmStandIn.Models, "application/json"));
            server.MapPost("/v1/chat/completions", context => LlmStandIn.CompleteAsync(context, new ConcurrentQueue<string>()));
        });
        _settings = (await StorageAsync()).With(TaskQueueSettings.Fast).With(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "standin",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = new Uri(StandIn.BaseUri, "/v1").ToString(),
        });
        App = new AgentryApp(_settings);
        await App.AdminClientAsync();
    }

    /// <summary>Stops the node (workers, tool server sessions, caches) and starts a new one on the same database.</summary>
    public async Task RestartAsync()
    {
        await App.DisposeAsync();
        App = new AgentryApp(_settings);
        await App.AdminClientAsync();
    }

    /// <summary>The chat requests the stand-in took whose messages contain <paramref name="marker"/>.</summary>
    public int ModelRequests(string marker) =>
        StandIn.Requests.Count(r => r.Path == "/v1/chat/completions" && r.Body?.GetRawText().Contains(marker, StringComparison.Ordinal) == true);

    public virtual async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await StandIn.DisposeAsync();
    }
}

public class SqliteApprovalFixture : ApprovalFixture
{
    protected override Task<Dictionary<string, string?>> StorageAsync() => Task.FromResult(Settings.Sqlite(TempFiles.Database()));
}

/// <summary>The prompt-injection suite's own app (on SQLite): a fixture type is one instance, so it must not be another class's.</summary>
public sealed class PromptInjectionFixture : SqliteApprovalFixture;

public sealed class PostgresApprovalFixture : ApprovalFixture
{
    private PostgresDatabase _database = null!;

    protected override async Task<Dictionary<string, string?>> StorageAsync()
    {
        _database = await PostgresDatabase.CreateAsync();
        return Settings.Postgres(_database.ConnectionString);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _database.DisposeAsync();
    }
}

/// <summary>A workspace for one test: an admin who registers servers and agents, and a member who decides approvals.</summary>
public sealed record ToolWorkspace(Guid Id, HttpClient Admin, HttpClient Member, string MemberEmail, string MemberPassword);

/// <summary>What the approval tests do through the API.</summary>
public static class ApprovalTesting
{
    public const string TasksUrl = "/api/v1/tasks";
    public const string ApprovalsUrl = "/api/v1/approvals";
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static async Task<ToolWorkspace> WorkspaceAsync(AgentryApp app)
    {
        var id = await app.CreateWorkspaceAsync();
        var admin = await app.UserClientAsync(id, Roles.Admin);
        var (_, email, password) = await app.CreateUserAsync(id, Roles.Member);
        return new ToolWorkspace(id, admin, await app.SignedInClientAsync(email, password), email, password);
    }

    /// <summary>Registers server-everything (stdio) as <paramref name="name"/> and waits until its tools are listed.</summary>
    public static Task RegisterEverythingAsync(HttpClient admin, string name, bool requireApproval = false, params string[] approvalTools) =>
        RegisterAsync(admin, name, [McpTestServers.Everything, "stdio"], requireApproval, approvalTools);

    /// <summary>Registers server-filesystem (stdio) on <paramref name="root"/> as <paramref name="name"/>.</summary>
    public static Task RegisterFilesystemAsync(HttpClient admin, string name, string root, bool requireApproval = false, params string[] approvalTools) =>
        RegisterAsync(admin, name, [McpTestServers.Filesystem, root], requireApproval, approvalTools);

    private static async Task RegisterAsync(HttpClient admin, string name, string[] args, bool requireApproval, string[] approvalTools)
    {
        await (await admin.PostJsonAsync("/api/v1/mcp-servers", new { name, transport = "stdio", command = McpTestServers.Node, args, requireApproval, approvalTools }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        var listed = await HttpAssertions.EventuallyAsync(
            async () => (await (await admin.GetAsync($"/api/v1/tools?server={name}")).ReadAsync<JsonElement>()).GetProperty("items").GetArrayLength() > 0, Patience);
        Assert.True(listed, $"server {name} lists no tools");
    }

    public static async Task<Guid> AgentAsync(HttpClient client, object body) =>
        (await (await client.PostJsonAsync("/api/v1/agents", body)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();

    public static async Task<Guid> SubmitAsync(HttpClient client, Guid agent, object input) =>
        (await (await client.PostJsonAsync(TasksUrl, new { agentId = agent, input, maxAttempts = 3 })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

    /// <summary>The input of a <c>standin/script</c> task: the model's reply asks for these calls (name, arguments).</summary>
    public static object Script(params (string Name, object Arguments)[] calls) =>
        new { message = JsonSerializer.Serialize(new { calls = calls.Select(c => new { name = c.Name, arguments = c.Arguments }) }) };

    public static Task<TaskResponse> FinalAsync(HttpClient client, Guid id) => UntilAsync(client, id, AgentTaskStatus.IsFinal);

    public static Task<TaskResponse> WaitingAsync(HttpClient client, Guid id) => UntilAsync(client, id, s => s is AgentTaskStatus.Waiting || AgentTaskStatus.IsFinal(s));

    private static async Task<TaskResponse> UntilAsync(HttpClient client, Guid id, Func<string, bool> reached)
    {
        TaskResponse task = null!;
        var done = await HttpAssertions.EventuallyAsync(async () => reached((task = await (await client.GetAsync($"{TasksUrl}/{id}")).ReadAsync<TaskResponse>()).Status), Patience);
        Assert.True(done, $"task {id} is still {task.Status} after {Patience}");
        return task;
    }

    /// <summary>The task's one approval.</summary>
    public static async Task<ApprovalResponse> ApprovalOfAsync(HttpClient client, Guid task) =>
        Assert.Single((await (await client.GetAsync($"{ApprovalsUrl}?taskId={task}")).ReadAsync<Page<ApprovalResponse>>()).Items);

    public static Task<HttpResponseMessage> DecideAsync(HttpClient client, Guid approval, string decision, string? reason = null) =>
        client.PostJsonAsync($"{ApprovalsUrl}/{approval}/{decision}", new { reason });

    public static async Task<List<TaskEventResponse>> EventsAsync(HttpClient client, Guid id) =>
        [.. (await (await client.GetAsync($"{TasksUrl}/{id}/events")).ReadAsync<TaskEventPage>()).Items];

    /// <summary>Every audit event of the workspace with this action, all pages (as the platform administrator).</summary>
    public static async Task<List<AuditEventResponse>> AuditAsync(AgentryApp app, Guid workspace, string action)
    {
        var admin = await app.AdminClientAsync();
        var events = new List<AuditEventResponse>();
        string? cursor = null;
        do
        {
            var page = await (await admin.GetAsync($"/api/v1/audit?workspaceId={workspace}&action={action}&limit=200{(cursor is null ? "" : $"&cursor={cursor}")}"))
                .ReadAsync<Page<AuditEventResponse>>();
            events.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return events;
    }

    /// <summary>The tool calls that reached a server for this task: the catalog audits each one (<c>tool.call</c>).</summary>
    public static async Task<List<AuditEventResponse>> CallsAsync(AgentryApp app, Guid workspace, Guid task) =>
        [.. (await AuditAsync(app, workspace, "tool.call")).Where(e => e.Detail?.GetProperty("taskId").GetString() == task.ToString())];

    /// <summary>
    /// A queued task of a <c>tool</c> agent with an approved approval whose call was started once, written straight into the
    /// database: the state a worker leaves that stopped after starting the approved call, with the call's result committed
    /// (<paramref name="result"/>) or not.
    /// </summary>
    public static async Task<(Guid Task, Guid Approval)> InsertApprovedAsync(AgentryApp app, Guid workspace, Guid agent, object input, string? result)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = DateTime.UtcNow;
        var task = new AgentTask
        {
            Id = Guid.CreateVersion7(), WorkspaceId = workspace, AgentId = agent, AgentVersion = 1, Kind = "tool", Status = AgentTaskStatus.Queued,
            RunAt = now, MaxAttempts = 3, TimeoutSeconds = 60, Input = JsonSerializer.Serialize(input), LastEventSeq = 1, CreatedAt = now,
        };
        var approval = new Approval
        {
            Id = Guid.CreateVersion7(), WorkspaceId = workspace, TaskId = task.Id, AgentId = agent, Tool = "everything__echo", Arguments = task.Input,
            CallId = $"task-{task.Id}", Status = ApprovalStatus.Approved, RequestedAt = now, DecidedAt = now, DecidedByName = "test",
            CallStartedAt = now, CallAttempts = 1, Result = result,
        };
        db.Tasks.Add(task);
        db.Approvals.Add(approval);
        await db.SaveChangesAsync();
        return (task.Id, approval.Id);
    }

    public static LlmRunResult Result(TaskResponse task) => task.Result!.Value.Deserialize<LlmRunResult>(JsonSerializerOptions.Web)!;
}
