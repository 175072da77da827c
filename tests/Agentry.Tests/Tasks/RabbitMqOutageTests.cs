using System.Net;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// The acceptance test of issue 4: on RabbitMQ, the broker restarts three times and PostgreSQL twice while
/// 5,000 tasks are submitted and run, and nothing is lost. Both servers are the test's own, so it can stop them.
/// </summary>
public sealed class RabbitMqOutageTests
{
    private const int Batches = 5;
    private const int BatchSize = 1_000;

    [Fact]
    public async Task Restarting_the_broker_three_times_and_PostgreSQL_twice_during_5000_tasks_loses_nothing()
    {
        await using var broker = new RabbitMqNode();
        var brokerStarted = broker.StartAsync();
        await using var postgres = await PostgresCluster.StartAsync();
        await brokerStarted;
        var handler = new RecordingTaskHandler();
        var settings = Settings.Postgres(postgres.ConnectionString).With(RabbitMqDispatch.Settings(broker.Uri, "agentry.tasks", 32, TimeSpan.FromSeconds(15)));
        settings["Agentry:Queue:Lease"] = "00:00:10";
        settings["Agentry:Storage:MaxPoolSize"] = "40";
        await using var app = new AgentryApp(settings, handler.Register);
        var user = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Admin);
        var agentId = await RabbitMqDispatch.CreateAgentAsync(user);

        var outages = new Func<Task>[] { broker.RestartAsync, RestartAsync(postgres), broker.RestartAsync, RestartAsync(postgres), broker.RestartAsync };
        var ids = new List<Guid>();
        for (var batch = 0; batch < Batches; batch++)
        {
            ids.AddRange(await SubmitAsync(user, agentId, batch));
            await outages[batch]();
        }

        var all = await HttpAssertions.EventuallyAsync(async () => await CountAsync(app, AgentTaskStatus.Succeeded) == Batches * BatchSize, TimeSpan.FromSeconds(120));
        Assert.True(all, $"{await CountAsync(app, AgentTaskStatus.Succeeded)} of {Batches * BatchSize} tasks succeeded; "
            + $"queued {await CountAsync(app, AgentTaskStatus.Queued)}, running {await CountAsync(app, AgentTaskStatus.Running)}, dead {await CountAsync(app, AgentTaskStatus.Dead)}");
        Assert.Equal(Batches * BatchSize, ids.Distinct().Count());
        Assert.All(ids, id => Assert.True(handler.RunsOf(id) >= 1, $"The handler never saw task {id}."));
    }

    private static Func<Task> RestartAsync(PostgresCluster postgres) => async () =>
    {
        await postgres.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        await postgres.StartAgainAsync();
    };

    /// <summary>Submits one batch, retrying while a server is away; the items' idempotency keys make a retry safe.</summary>
    private static async Task<IEnumerable<Guid>> SubmitAsync(HttpClient user, Guid agentId, int batch)
    {
        var body = new
        {
            tasks = Enumerable.Range(0, BatchSize).Select(i => new
            {
                agentId,
                input = new { batch, i },
                priority = i % 10,
                maxAttempts = 50,
                idempotencyKey = $"outage-{batch}-{i}",
            }).ToList(),
        };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                var response = await user.PostJsonAsync("/api/v1/tasks/batch", body);
                if (response.StatusCode == HttpStatusCode.Accepted || DateTime.UtcNow > deadline)
                {
                    return (await response.ReadAsync<BatchResponse>(HttpStatusCode.Accepted)).Items.Select(i => i.Task.Id);
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                // The server is on its way back.
            }
            await Task.Delay(500);
        }
    }

    private static async Task<int> CountAsync(AgentryApp app, string status)
    {
        try
        {
            await using var scope = app.Services.CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Tasks.CountAsync(t => t.Status == status);
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or InvalidOperationException)
        {
            return -1;
        }
    }
}
