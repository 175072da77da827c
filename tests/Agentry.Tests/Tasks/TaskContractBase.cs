using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>What the task suites share: a fixture's app and scripted handler, and the client calls they make.</summary>
public abstract class TaskContractBase(ITaskQueueFixture fixture)
{
    protected const string Url = "/api/v1/tasks";
    protected static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    protected readonly AgentryApp _app = fixture.App;
    protected readonly ScriptedTaskHandler _handler = fixture.Handler;

    protected async Task<(HttpClient Client, Guid Agent)> WorkspaceAsync()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var client = await _app.UserClientAsync(workspace, Roles.Admin);
        var agent = await (await client.PostJsonAsync("/api/v1/agents", new { name = "worker", kind = "webhook", webhook = new { url = "https://example.com/hook" } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created);
        return (client, agent.GetProperty("id").GetGuid());
    }

    protected static Task<HttpResponseMessage> PostAsync(HttpClient client, object body, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Url) { Content = HttpAssertions.Json(body) };
        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }
        return client.SendAsync(request);
    }

    protected static async Task<Guid> SubmitAsync(
        HttpClient client, Guid agent, object input, int? maxAttempts = null, int? timeoutSeconds = null, int? priority = null, DateTime? runAt = null) =>
        (await (await client.PostJsonAsync(Url, new { agentId = agent, input, maxAttempts, timeoutSeconds, priority, runAt }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

    protected static async Task<List<Guid>> SubmitBatchAsync(HttpClient client, Guid agent, int count, DateTime? runAt, object? input = null, int? maxAttempts = null)
    {
        var tasks = Enumerable.Range(0, count).Select(_ => new { agentId = agent, input = input ?? new { mode = "ok" }, runAt, maxAttempts }).ToList();
        var batch = await (await client.PostJsonAsync($"{Url}/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        return batch.Items.Select(i => i.Task.Id).ToList();
    }

    protected static async Task<TaskResponse> GetAsync(HttpClient client, Guid id) =>
        await (await client.GetAsync($"{Url}/{id}")).ReadAsync<TaskResponse>();

    protected static async Task<TaskResponse> FinalAsync(HttpClient client, Guid id)
    {
        TaskResponse task = null!;
        var final = await HttpAssertions.EventuallyAsync(async () => AgentTaskStatus.IsFinal((task = await GetAsync(client, id)).Status), Patience);
        Assert.True(final, $"task {id} is still {task.Status} after {Patience}");
        return task;
    }

    protected static async Task<List<TaskEventResponse>> EventsAsync(HttpClient client, Guid id) =>
        (await (await client.GetAsync($"{Url}/{id}/events")).ReadAsync<TaskEventPage>()).Items.ToList();

    protected static async Task<List<TaskResponse>> ListAllAsync(HttpClient client, string query)
    {
        var all = new List<TaskResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"{Url}?limit=200&{query}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}"))).ReadAsync<Page<TaskResponse>>();
            all.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return all;
    }
}

/// <summary>Queue settings short enough for tests (and the scripted handler in place of the webhook one).</summary>
public static class TaskQueueSettings
{
    public static readonly Dictionary<string, string?> Fast = new()
    {
        ["Agentry:Queue:PollInterval"] = "00:00:00.050",
        ["Agentry:Queue:Lease"] = ITaskQueueFixture.Lease.ToString(),
        ["Agentry:Queue:Heartbeat"] = "00:00:00.250",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.100",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:05",
        ["Agentry:Queue:Concurrency"] = "4",
    };
}

public interface ITaskQueueFixture
{
    static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);

    AgentryApp App { get; }

    ScriptedTaskHandler Handler { get; }
}

public sealed class SqliteTaskQueueFixture : SqliteFixture, ITaskQueueFixture
{
    public ScriptedTaskHandler Handler { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => TaskQueueSettings.Fast;

    protected override Action<IServiceCollection> Services => s => s.AddSingleton<ITaskHandler>(Handler);
}

public sealed class PostgresTaskQueueFixture : PostgresFixture, ITaskQueueFixture
{
    public ScriptedTaskHandler Handler { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => TaskQueueSettings.Fast;

    protected override Action<IServiceCollection> Services => s => s.AddSingleton<ITaskHandler>(Handler);
}
