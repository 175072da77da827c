using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// Dispatch through RabbitMQ with the database as the truth: outbox → relay → quorum queue → conditional
/// lease. Each test class has its own queue on the test broker and its own database.
/// </summary>
public abstract class RabbitMqDispatchContract(StorageFixture fixture, RabbitMqDispatch dispatch)
{
    private readonly AgentryApp _app = fixture.App;

    [Fact]
    public async Task Submitted_tasks_are_published_run_once_and_leave_the_outbox_empty()
    {
        var response = await dispatch.User.PostJsonAsync("/api/v1/tasks/batch", new
        {
            tasks = Enumerable.Range(0, 100).Select(i => new { agentId = dispatch.AgentId, input = new { i }, priority = i % 10 }).ToList(),
        });
        var ids = (await response.ReadAsync<BatchResponse>(HttpStatusCode.Accepted)).Items.Select(i => i.Task.Id).ToList();

        foreach (var id in ids)
        {
            var task = await dispatch.WaitForAsync(id, AgentTaskStatus.Succeeded);
            Assert.Equal(1, task.Attempts);
            Assert.Equal("""{"ok":true}""", task.Result?.GetRawText());
        }
        Assert.All(ids, id => Assert.Equal(1, dispatch.Handler.RunsOf(id)));
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await RabbitMqDispatch.OutboxCountAsync(_app) == 0, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_failed_attempt_is_retried_through_the_outbox()
    {
        // The broker-loss sweeper waits an hour here, so only a new outbox row can bring the second attempt.
        var id = await dispatch.SubmitAsync(new { failTimes = 1 });

        var task = await dispatch.WaitForAsync(id, AgentTaskStatus.Succeeded);

        Assert.Equal(2, task.Attempts);
        Assert.Equal(2, dispatch.Handler.RunsOf(id));
        var events = await (await dispatch.User.GetAsync($"/api/v1/tasks/{id}/events")).ReadAsync<TaskEventPage>();
        Assert.Equal(["queued", "started", "failed", "retrying", "started", "succeeded"], events.Items.Select(e => e.Type));
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await RabbitMqDispatch.OutboxCountAsync(_app) == 0, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task The_relay_publishes_a_task_only_after_its_transaction_commits()
    {
        await using var scope = _app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var submitted = await dispatch.GetAsync(await dispatch.SubmitAsync());
        await dispatch.WaitForAsync(submitted.Id, AgentTaskStatus.Succeeded);
        var now = DateTime.UtcNow;
        var task = new AgentTask
        {
            Id = Guid.CreateVersion7(), WorkspaceId = await WorkspaceOfAsync(submitted.Id), AgentId = dispatch.AgentId, AgentVersion = 1, Kind = "webhook",
            Status = AgentTaskStatus.Queued, Priority = 5, RunAt = now, MaxAttempts = 3, TimeoutSeconds = 60, Input = "{}", LastEventSeq = 1, CreatedAt = now,
        };

        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            db.Tasks.Add(task);
            db.TaskOutbox.Add(new TaskOutboxEntry { TaskId = task.Id, Priority = task.Priority, DueAt = task.RunAt });
            await db.SaveChangesAsync();
            // Many relay polls (100 ms apart) pass while the rows are written but not committed.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.Equal(0, dispatch.Handler.RunsOf(task.Id));
            await transaction.CommitAsync();
        }

        await dispatch.WaitForAsync(task.Id, AgentTaskStatus.Succeeded);
        Assert.Equal(1, dispatch.Handler.RunsOf(task.Id));
    }

    [Fact]
    public async Task Duplicate_messages_run_a_task_once()
    {
        var (connection, channel) = await RabbitMqDispatch.OpenAsync(TestServers.RabbitMq);
        await using (connection)
        await using (channel)
        {
            var ids = new List<Guid>();
            for (var i = 0; i < 10; i++)
            {
                var id = await dispatch.SubmitAsync();
                ids.Add(id);
                await dispatch.PublishAsync(channel, id);
                await dispatch.PublishAsync(channel, id);
            }
            foreach (var id in ids)
            {
                await dispatch.WaitForAsync(id, AgentTaskStatus.Succeeded);
            }
            // And again once they are finished.
            foreach (var id in ids)
            {
                await dispatch.PublishAsync(channel, id);
            }
            Assert.True(await HttpAssertions.EventuallyAsync(async () => (await channel.QueueDeclarePassiveAsync(dispatch.Queue)).MessageCount == 0, TimeSpan.FromSeconds(30)));
            await Task.Delay(300);

            Assert.All(ids, id => Assert.Equal(1, dispatch.Handler.RunsOf(id)));
            foreach (var id in ids)
            {
                Assert.Equal(1, (await dispatch.GetAsync(id)).Attempts);
            }
        }
    }

    [Fact]
    public async Task Readiness_reports_the_broker()
    {
        var response = await _app.Client().GetAsync("/health/ready");
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", body.GetProperty("checks").GetProperty("rabbitmq").GetProperty("status").GetString());
    }

    private async Task<Guid> WorkspaceOfAsync(Guid taskId)
    {
        await using var scope = _app.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<AppDbContext>().Tasks.FindAsync(taskId))!.WorkspaceId;
    }
}

public sealed class PostgresRabbitMqDispatchTests(RabbitMqPostgresFixture fixture)
    : RabbitMqDispatchContract(fixture, fixture.Dispatch), IClassFixture<RabbitMqPostgresFixture>;

public sealed class SqliteRabbitMqDispatchTests(RabbitMqSqliteFixture fixture)
    : RabbitMqDispatchContract(fixture, fixture.Dispatch), IClassFixture<RabbitMqSqliteFixture>;

/// <summary>With one worker slot, so a held task keeps the next messages waiting in the broker.</summary>
public sealed class RabbitMqOneSlotTests(RabbitMqOneSlotFixture fixture) : IClassFixture<RabbitMqOneSlotFixture>
{
    private readonly RabbitMqDispatch _dispatch = fixture.Dispatch;

    [Fact]
    public async Task Messages_the_broker_lost_are_republished_and_their_tasks_still_run()
    {
        // The only worker slot is busy and its small prefetch window full, so most of the next tasks' messages wait in the broker…
        var held = await _dispatch.SubmitAsync(new { hold = true });
        await _dispatch.WaitForAsync(held, AgentTaskStatus.Running);
        var waiting = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            waiting.Add(await _dispatch.SubmitAsync());
        }
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await RabbitMqDispatch.OutboxCountAsync(fixture.App) == 0, TimeSpan.FromSeconds(30)));

        // …where they are lost.
        var (connection, channel) = await RabbitMqDispatch.OpenAsync(TestServers.RabbitMq);
        await using (connection)
        await using (channel)
        {
            Assert.True(await channel.QueuePurgeAsync(_dispatch.Queue) >= 1);
        }
        _dispatch.Handler.ReleaseHeld();

        await _dispatch.WaitForAsync(held, AgentTaskStatus.Succeeded);
        foreach (var id in waiting)
        {
            await _dispatch.WaitForAsync(id, AgentTaskStatus.Succeeded);
            Assert.Equal(1, _dispatch.Handler.RunsOf(id));
        }
    }

    [Fact]
    public async Task A_batch_that_waits_in_the_broker_runs_highest_priority_first()
    {
        var held = await _dispatch.SubmitAsync(new { hold = true });
        await _dispatch.WaitForAsync(held, AgentTaskStatus.Running);
        int[] priorities = [3, 9, 0, 5, 7, 1, 8, 2, 6, 4];
        var response = await _dispatch.User.PostJsonAsync("/api/v1/tasks/batch", new
        {
            tasks = priorities.Select(p => new { agentId = _dispatch.AgentId, input = new { }, priority = p }).ToList(),
        });
        var ids = (await response.ReadAsync<BatchResponse>(HttpStatusCode.Accepted)).Items.Select(i => i.Task.Id).ToList();
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await RabbitMqDispatch.OutboxCountAsync(fixture.App) == 0, TimeSpan.FromSeconds(30)));

        _dispatch.Handler.ReleaseHeld();

        var tasks = new List<TaskResponse>();
        foreach (var id in ids)
        {
            tasks.Add(await _dispatch.WaitForAsync(id, AgentTaskStatus.Succeeded));
        }
        Assert.Equal([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], tasks.OrderBy(t => t.StartedAt).Select(t => t.Priority));
    }
}

/// <summary>The consumer seen from the worker's side, on a node whose own workers are off.</summary>
public sealed class RabbitMqConsumerTests(RabbitMqApiNodeFixture fixture) : IClassFixture<RabbitMqApiNodeFixture>
{
    private readonly RabbitMqDispatch _dispatch = fixture.Dispatch;

    [Fact]
    public async Task A_node_without_workers_leaves_messages_in_the_broker_and_settling_acks_every_delivery_of_a_take()
    {
        var queue = fixture.App.Services.GetRequiredService<ITaskQueue>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var (connection, channel) = await RabbitMqDispatch.OpenAsync(TestServers.RabbitMq);
        await using (connection)
        await using (channel)
        {
            for (var round = 0; round < 3; round++)
            {
                var ids = new HashSet<Guid>();
                for (var i = 0; i < 4; i++)
                {
                    ids.Add(await _dispatch.SubmitAsync());
                }
                Assert.True(await HttpAssertions.EventuallyAsync(async () => await RabbitMqDispatch.OutboxCountAsync(fixture.App) == 0, TimeSpan.FromSeconds(30)));
                if (round == 0)
                {
                    // Nothing consumes until a worker takes.
                    var waiting = await channel.QueueDeclarePassiveAsync(_dispatch.Queue);
                    Assert.Equal((4u, 0u), (waiting.MessageCount, waiting.ConsumerCount));
                }

                // One, then (once the rest sit in the prefetch window) the other three in a single take.
                var taken = (await queue.TakeAsync(1, timeout.Token)).ToList();
                Assert.True(await HttpAssertions.EventuallyAsync(async () => (await channel.QueueDeclarePassiveAsync(_dispatch.Queue)).MessageCount == 0, TimeSpan.FromSeconds(30)));
                while (taken.Count < 4)
                {
                    taken.AddRange(await queue.TakeAsync(10, timeout.Token));
                }
                Assert.Equal(ids, taken.Select(t => t.Id).ToHashSet());

                // The prefetch window is exactly four: a delivery left unacked here would stall the next round.
                foreach (var task in taken)
                {
                    await queue.SettleAsync(task);
                }
            }
        }
    }
}
