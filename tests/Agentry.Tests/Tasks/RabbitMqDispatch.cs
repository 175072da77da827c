using System.Net;
using System.Text;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RabbitMQ.Client;

namespace Agentry.Tests.Tasks;

/// <summary>
/// What a RabbitMQ dispatch test needs besides its app: a queue of its own on the test broker (so test
/// classes running at once never share messages), a recording handler, a workspace admin and a webhook agent.
/// </summary>
public sealed class RabbitMqDispatch
{
    public RecordingTaskHandler Handler { get; } = new();

    public string Queue { get; } = $"agentry-test-{Guid.NewGuid():N}";

    public HttpClient User { get; private set; } = null!;

    public Guid AgentId { get; private set; }

    public static Dictionary<string, string?> Settings(string uri, string queue, int concurrency, TimeSpan republishAfter) => new()
    {
        ["Agentry:Queue:Provider"] = "rabbitmq",
        ["Agentry:Queue:RabbitMqUri"] = uri,
        ["Agentry:Queue:RabbitMqQueue"] = queue,
        ["Agentry:Queue:Concurrency"] = concurrency.ToString(),
        ["Agentry:Queue:RepublishAfter"] = republishAfter.ToString("c"),
        ["Agentry:Queue:PollInterval"] = "00:00:00.100",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.100",
        ["Agentry:Queue:RetryMaxDelay"] = "00:00:01",
    };

    public Dictionary<string, string?> Settings(int concurrency, TimeSpan republishAfter) =>
        Settings(TestServers.RabbitMq, Queue, concurrency, republishAfter);

    public async Task InitializeAsync(AgentryApp app)
    {
        User = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Admin);
        AgentId = await CreateAgentAsync(User);
    }

    public static async Task<Guid> CreateAgentAsync(HttpClient user)
    {
        var response = await user.PostJsonAsync("/api/v1/agents", new { name = $"hook-{Guid.NewGuid():N}", kind = "webhook", webhook = new { url = "https://example.com/hook" } });
        return (await response.ReadAsync<AgentResponse>(HttpStatusCode.Created)).Id;
    }

    public async Task<Guid> SubmitAsync(object? input = null, int? priority = null, DateTime? runAt = null)
    {
        var response = await User.PostJsonAsync("/api/v1/tasks", new { agentId = AgentId, input = input ?? new { }, priority, runAt });
        return (await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
    }

    public async Task<TaskResponse> GetAsync(Guid id) => await (await User.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>();

    /// <summary>Waits for the task to reach <paramref name="status"/>; fails with its last state otherwise.</summary>
    public async Task<TaskResponse> WaitForAsync(Guid id, string status, TimeSpan? within = null)
    {
        TaskResponse task = null!;
        var reached = await HttpAssertions.EventuallyAsync(async () => (task = await GetAsync(id)).Status == status, within ?? TimeSpan.FromSeconds(60));
        Assert.True(reached, $"Task {id} did not become {status}: {JsonSerializer.Serialize(task)}");
        return task;
    }

    public static async Task<int> OutboxCountAsync(AgentryApp app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().TaskOutbox.CountAsync();
    }

    /// <summary>A channel on the test broker, for publishing, purging and inspecting the test's queue directly.</summary>
    public static async Task<(IConnection Connection, IChannel Channel)> OpenAsync(string uri)
    {
        var connection = await new ConnectionFactory { Uri = new Uri(uri) }.CreateConnectionAsync();
        return (connection, await connection.CreateChannelAsync());
    }

    /// <summary>Publishes a message naming the task, as the relay would.</summary>
    public async Task PublishAsync(IChannel channel, Guid taskId)
    {
        var properties = new BasicProperties { Persistent = true, Headers = new Dictionary<string, object?> { ["priority"] = 5 } };
        await channel.BasicPublishAsync(Queue, Queue, mandatory: true, properties, Encoding.UTF8.GetBytes(taskId.ToString()));
    }

    public async Task DeleteQueuesAsync()
    {
        var (connection, channel) = await OpenAsync(TestServers.RabbitMq);
        await using (connection)
        await using (channel)
        {
            await channel.QueueDeleteAsync(Queue);
            await channel.QueueDeleteAsync($"{Queue}.dead");
            await channel.ExchangeDeleteAsync(Queue);
            await channel.ExchangeDeleteAsync($"{Queue}.dlx");
        }
    }
}

/// <summary>An app on PostgreSQL dispatching through a queue of its own on the test broker.</summary>
public class RabbitMqPostgresFixture : PostgresFixture
{
    public RabbitMqDispatch Dispatch { get; } = new();

    protected virtual int Concurrency => 4;

    /// <summary>Long by default, so only the outbox can have published what a test sees run.</summary>
    protected virtual TimeSpan RepublishAfter => TimeSpan.FromHours(1);

    protected override IReadOnlyDictionary<string, string?>? Extra => Dispatch.Settings(Concurrency, RepublishAfter);

    protected override Action<IServiceCollection>? Services => Dispatch.Handler.Register;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        await Dispatch.InitializeAsync(App);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Dispatch.DeleteQueuesAsync();
    }
}

/// <summary>One worker slot (so a held task keeps the next ones waiting in the broker) and a quick broker-loss sweeper.</summary>
public sealed class RabbitMqOneSlotFixture : RabbitMqPostgresFixture
{
    protected override int Concurrency => 1;

    protected override TimeSpan RepublishAfter => TimeSpan.FromSeconds(2);
}

/// <summary>The same on SQLite, the embedded database.</summary>
public sealed class RabbitMqSqliteFixture : SqliteFixture
{
    public RabbitMqDispatch Dispatch { get; } = new();

    protected override IReadOnlyDictionary<string, string?>? Extra => Dispatch.Settings(4, TimeSpan.FromHours(1));

    protected override Action<IServiceCollection>? Services => Dispatch.Handler.Register;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        await Dispatch.InitializeAsync(App);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Dispatch.DeleteQueuesAsync();
    }
}

/// <summary>An API-only node (no workers) with two slots' worth of prefetch, so a test can take from its queue itself.</summary>
public sealed class RabbitMqApiNodeFixture : RabbitMqPostgresFixture
{
    protected override int Concurrency => 2;

    protected override IReadOnlyDictionary<string, string?>? Extra => new Dictionary<string, string?>(base.Extra!) { ["Agentry:Role"] = "api" };
}
