using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// The task API: submission (202, Location, validation, idempotency keys, batches), lists (filters, keyset
/// pages under writes, the sort allow-list) and workspace scoping, the same on every storage provider.
/// </summary>
public abstract class TaskApiContract(ITaskQueueFixture fixture) : TaskContractBase(fixture)
{
    [Fact]
    public async Task A_submitted_task_answers_202_with_location_runs_and_succeeds_with_its_result_and_events()
    {
        var (client, agent) = await WorkspaceAsync();
        var response = await client.PostJsonAsync(Url, new { agentId = agent, input = new { mode = "ok", n = 7 }, priority = 3 });

        var accepted = await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        Assert.Equal($"{Url}/{accepted.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal((AgentTaskStatus.Queued, 3, 1, 0), (accepted.Status, accepted.Priority, accepted.AgentVersion, accepted.Attempts));
        var done = await FinalAsync(client, accepted.Id);
        Assert.Equal((AgentTaskStatus.Succeeded, 1, "completed"), (done.Status, done.Attempts, done.Reason));
        Assert.Equal(7, done.Result!.Value.GetProperty("echo").GetProperty("n").GetInt32());
        var events = await EventsAsync(client, accepted.Id);
        Assert.Equal(["queued", "started", "succeeded"], events.Select(e => e.Type));
        Assert.Equal([1L, 2, 3], events.Select(e => e.Seq));
    }

    [Fact]
    public async Task Bad_submissions_are_4xx_naming_what_is_wrong()
    {
        var (client, agent) = await WorkspaceAsync();
        (await (await client.PostJsonAsync(Url, new { input = new { } })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
        (await (await client.PostJsonAsync(Url, new { agentId = agent, priority = 10 })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("priority");
        (await (await client.PostJsonAsync(Url, new { agentId = Guid.CreateVersion7() })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
        await (await client.PostAsync(Url, new StringContent("{\"agentId\":", System.Text.Encoding.UTF8, "application/json"))).AssertProblemAsync(HttpStatusCode.BadRequest, "malformed_json");
        await (await client.GetAsync($"{Url}/{Guid.CreateVersion7()}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task The_same_idempotency_key_returns_the_original_a_different_body_is_422()
    {
        var (client, agent) = await WorkspaceAsync();
        var body = new { agentId = agent, input = new { mode = "ok" } };
        var first = await (await PostAsync(client, body, "key-1")).ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        var again = await PostAsync(client, body, "key-1");

        Assert.Equal(first.Id, (await again.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        await (await PostAsync(client, new { agentId = agent, input = new { mode = "other" } }, "key-1")).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
    }

    [Fact]
    public async Task A_thousand_keys_each_posted_ten_times_at_once_create_exactly_a_thousand_tasks()
    {
        var (client, agent) = await WorkspaceAsync();
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentBag<Guid>>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1_000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (k, _) =>
        {
            var body = new { agentId = agent, input = new { mode = "ok", k }, runAt = DateTime.UtcNow.AddHours(1) };
            var posts = Enumerable.Range(0, 10).Select(_ => PostAsync(client, body, $"k-{k}"));
            foreach (var response in await Task.WhenAll(posts))
            {
                ids.GetOrAdd($"k-{k}", _ => []).Add((await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id);
            }
        });

        Assert.All(ids.Values, same => Assert.Single(same.Distinct()));
        Assert.Equal(1_000, (await ListAllAsync(client, "")).Count);
    }

    [Fact]
    public async Task Submissions_committed_together_stay_apart_a_conflicting_key_fails_none_of_the_others()
    {
        // Concurrent submissions share commits (TaskWriter); a key race inside a shared commit must cost the
        // others nothing: every keyless one is created once, the keyed ones agree on one task.
        var (client, agent) = await WorkspaceAsync();
        var runAt = DateTime.UtcNow.AddHours(1);
        var posts = Enumerable.Range(0, 200).Select(i => i % 2 == 0
            ? PostAsync(client, new { agentId = agent, input = new { i }, runAt }, null)
            : PostAsync(client, new { agentId = agent, input = new { shared = true }, runAt }, "shared-key"));

        var accepted = new List<TaskResponse>();
        foreach (var response in await Task.WhenAll(posts))
        {
            accepted.Add(await response.ReadAsync<TaskResponse>(HttpStatusCode.Accepted));
        }

        Assert.Equal(101, accepted.Select(t => t.Id).Distinct().Count());
        Assert.Equal(101, (await ListAllAsync(client, "")).Count);
    }

    [Fact]
    public async Task A_batch_is_one_transaction_with_a_result_per_item()
    {
        var (client, agent) = await WorkspaceAsync();
        var tasks = Enumerable.Range(0, 1_000).Select(i => new { agentId = agent, input = new { i }, runAt = DateTime.UtcNow.AddHours(1), idempotencyKey = i == 0 ? "b-0" : null }).ToList();

        var batch = await (await client.PostJsonAsync($"{Url}/batch", new { tasks })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        Assert.Equal(1_000, batch.Items.Count);
        Assert.All(batch.Items, (item, i) => Assert.Equal((i, true), (item.Index, item.Created)));
        var repeat = await (await client.PostJsonAsync($"{Url}/batch", new { tasks = new[] { tasks[0] } })).ReadAsync<BatchResponse>(HttpStatusCode.Accepted);
        Assert.Equal((false, batch.Items[0].Task.Id), (repeat.Items[0].Created, repeat.Items[0].Task.Id));

        var bad = tasks.Take(5).Select((t, i) => new { t.agentId, priority = i == 3 ? 42 : 1 }).ToList();
        var errors = (await (await client.PostJsonAsync($"{Url}/batch", new { tasks = bad })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors");
        Assert.True(errors.TryGetProperty("tasks[3].priority", out _), errors.ToString());
        var tooMany = Enumerable.Range(0, 1_001).Select(_ => new { agentId = agent }).ToList();
        await (await client.PostJsonAsync($"{Url}/batch", new { tasks = tooMany })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(1_000, (await ListAllAsync(client, "")).Count);
    }

    [Fact]
    public async Task Lists_filter_and_page_without_repeats_or_gaps_while_tasks_arrive_and_refuse_unlisted_sorts()
    {
        var (client, agent) = await WorkspaceAsync();
        var later = DateTime.UtcNow.AddHours(1);
        var before = await SubmitBatchAsync(client, agent, 45, later);
        foreach (var sort in new[] { "name;DROP TABLE tasks", "priority", "Id", "-createdAt;--" })
        {
            (await (await client.GetAsync($"{Url}?sort={Uri.EscapeDataString(sort)}")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
                .GetProperty("errors").GetProperty("sort");
        }
        await (await client.GetAsync($"{Url}?status=bogus")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        foreach (var sort in new[] { "-createdAt", "createdAt" })
        {
            var seen = new List<Guid>();
            string? cursor = null;
            do
            {
                var page = await (await client.GetAsync($"{Url}?limit=7&sort={sort}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}"))).ReadAsync<Page<TaskResponse>>();
                seen.AddRange(page.Items.Select(t => t.Id));
                cursor = page.NextCursor;
                await SubmitBatchAsync(client, agent, 3, later); // arrivals during paging
            }
            while (cursor is not null);
            Assert.Equal(seen.Count, seen.Distinct().Count());
            Assert.Subset(seen.ToHashSet(), before.ToHashSet());
        }
        var queued = await ListAllAsync(client, $"status=queued&agentId={agent}");
        Assert.Superset(before.ToHashSet(), queued.Select(t => t.Id).ToHashSet());
        Assert.Empty(await ListAllAsync(client, "status=dead"));
        Assert.Empty(await ListAllAsync(client, $"createdAfter={Uri.EscapeDataString(DateTime.UtcNow.AddMinutes(1).ToString("o"))}"));
    }

    [Fact]
    public async Task Counts_say_how_many_of_the_workspace_tasks_are_in_each_status_and_leave_other_workspaces_out()
    {
        var (client, agent) = await WorkspaceAsync();
        var (stranger, strangerAgent) = await WorkspaceAsync();
        Assert.Equal(new TaskCountsResponse(0, 0, 0, 0, 0, 0), await CountsAsync(client));

        var later = DateTime.UtcNow.AddHours(1);
        await SubmitBatchAsync(client, agent, 3, later);
        var succeeded = await SubmitBatchAsync(client, agent, 2, runAt: null);
        var dead = await SubmitAsync(client, agent, new { mode = "fatal" });
        var running = await SubmitAsync(client, agent, new { mode = "block" });
        var cancelled = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: later);
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync($"{Url}/{cancelled}/cancel", null)).StatusCode);
        var strangers = await SubmitBatchAsync(stranger, strangerAgent, 4, runAt: null);
        foreach (var id in succeeded.Append(dead))
        {
            await FinalAsync(client, id);
        }
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await GetAsync(client, running)).Status == AgentTaskStatus.Running, Patience));

        Assert.Equal(new TaskCountsResponse(Queued: 3, Running: 1, Waiting: 0, Succeeded: 2, Dead: 1, Cancelled: 1), await CountsAsync(client));
        foreach (var id in strangers)
        {
            await FinalAsync(stranger, id);
        }
        Assert.Equal(new TaskCountsResponse(0, 0, 0, Succeeded: 4, 0, 0), await CountsAsync(stranger));

        // The blocked task ends, so it holds no worker slot after the test.
        await client.PostAsync($"{Url}/{running}/cancel", null);
        Assert.Equal(AgentTaskStatus.Cancelled, (await FinalAsync(client, running)).Status);
        Assert.Equal(new TaskCountsResponse(3, 0, 0, 2, 1, Cancelled: 2), await CountsAsync(client));
    }

    private static async Task<TaskCountsResponse> CountsAsync(HttpClient client) =>
        await (await client.GetAsync($"{Url}/counts")).ReadAsync<TaskCountsResponse>();

    [Fact]
    public async Task Tasks_are_scoped_to_their_workspace()
    {
        var (client, agent) = await WorkspaceAsync();
        var id = await SubmitAsync(client, agent, new { mode = "ok" }, runAt: DateTime.UtcNow.AddHours(1));
        var (stranger, _) = await WorkspaceAsync();

        await (await stranger.GetAsync($"{Url}/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.GetAsync($"{Url}/{id}/events")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await stranger.PostAsync($"{Url}/{id}/cancel", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.Empty(await ListAllAsync(stranger, ""));
        (await (await stranger.PostJsonAsync(Url, new { agentId = agent })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("agentId");
    }
}

public sealed class SqliteTaskApiTests(SqliteTaskQueueFixture fixture) : TaskApiContract(fixture), IClassFixture<SqliteTaskQueueFixture>;

public sealed class PostgresTaskApiTests(PostgresTaskQueueFixture fixture) : TaskApiContract(fixture), IClassFixture<PostgresTaskQueueFixture>;
