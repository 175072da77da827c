using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Agentry.Data;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using StackExchange.Redis;

namespace Agentry.Tests.Data;

/// <summary>FusionCache with real Redis as second level and backplane.</summary>
public sealed class RedisCacheTests
{
    [Fact]
    public async Task Two_nodes_sharing_redis_see_each_others_writes_by_key_and_by_tag()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        var settings = Settings.Cluster(database);
        await using var nodeA = new AgentryApp(settings);
        await using var nodeB = new AgentryApp(settings);
        var a = await nodeA.AdminClientAsync();
        var b = await nodeB.AdminClientAsync();
        var created = await (await a.PostJsonAsync("/api/v1/workspaces", new { name = "original", slug = "shared" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);

        // Both nodes now hold the workspace and the list in memory.
        Assert.Equal("original", (await (await a.GetAsync($"/api/v1/workspaces/{created.Id}")).ReadAsync<WorkspaceResponse>()).Name);
        Assert.Equal("original", (await (await b.GetAsync($"/api/v1/workspaces/{created.Id}")).ReadAsync<WorkspaceResponse>()).Name);
        var listed = (await (await a.GetAsync("/api/v1/workspaces")).ReadAsync<Page<WorkspaceResponse>>()).Items.Count;

        // A write on B evicts A's copy by key (backplane) ...
        (await b.PatchAsync($"/api/v1/workspaces/{created.Id}", JsonContent(new { name = "renamed" }))).EnsureSuccessStatusCode();
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await (await a.GetAsync($"/api/v1/workspaces/{created.Id}")).ReadAsync<WorkspaceResponse>()).Name == "renamed",
            TimeSpan.FromSeconds(5)), "node A kept serving its stale copy");

        // ... and A's cached list pages by tag.
        (await b.PostJsonAsync("/api/v1/workspaces", new { name = "second", slug = "second" })).EnsureSuccessStatusCode();
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await (await a.GetAsync("/api/v1/workspaces")).ReadAsync<Page<WorkspaceResponse>>()).Items.Count == listed + 1,
            TimeSpan.FromSeconds(5)), "node A kept serving its stale list");

        // The second level really is Redis, under this deployment's prefix.
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        Assert.NotEmpty(redis.GetServers()[0].Keys(pattern: $"*{database.Name}:workspace:{created.Id}*"));
    }

    [Fact]
    public async Task Losing_redis_degrades_readiness_without_failing_requests_and_it_recovers_alone()
    {
        await using var redisServer = new RedisProcess();
        await redisServer.StartAsync();
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Cache:Redis"] = redisServer.Configuration });
        var client = await app.AdminClientAsync();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await (await client.PostJsonAsync("/api/v1/workspaces", new { name = $"w{i}", slug = $"w{i}" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created)).Id);
        }
        Assert.Equal("healthy", await ReadinessAsync(client, "redis"));

        var statuses = new ConcurrentBag<int>();
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(() => DriveTrafficAsync(client, ids, statuses, stop.Token));

        await Task.Delay(300);
        await redisServer.StopAsync();
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await ReadinessAsync(client, "redis") == "degraded", TimeSpan.FromSeconds(10)),
            "readiness did not report Redis as degraded");
        var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode); // degraded, not down: the node still takes traffic
        Assert.Equal("degraded", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
        await Task.Delay(1_000);

        await redisServer.StartAsync();
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await ReadinessAsync(client, "redis") == "healthy", TimeSpan.FromSeconds(15)),
            "Agentry did not reconnect to Redis by itself");
        await Task.Delay(500);
        await stop.CancelAsync();
        await traffic;

        Assert.True(statuses.Count > 20, $"only {statuses.Count} requests ran");
        Assert.DoesNotContain(statuses, s => s >= 500);
        Assert.All(statuses, s => Assert.InRange(s, 200, 299));

        // Writes reach the restarted (empty) Redis again. A write made while the cache's breaker is still open after the
        // outage (Agentry:Cache:RedisCircuitBreakerDuration) stays in memory only, so each try caches a new workspace.
        await using var redis = await ConnectionMultiplexer.ConnectAsync(redisServer.Configuration);
        var tries = 0;
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            var fresh = await (await client.PostJsonAsync("/api/v1/workspaces", new { name = "after", slug = $"after-{++tries}" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
            (await client.GetAsync($"/api/v1/workspaces/{fresh.Id}")).EnsureSuccessStatusCode();
            return await HttpAssertions.EventuallyAsync(
                () => Task.FromResult(redis.GetServers()[0].Keys(pattern: $"*workspace:{fresh.Id}*").Any()), TimeSpan.FromSeconds(1));
        }, TimeSpan.FromSeconds(20)), $"the cache did not write to Redis after it came back ({tries} workspaces tried)");
    }

    private static async Task DriveTrafficAsync(HttpClient client, List<Guid> ids, ConcurrentBag<int> statuses, CancellationToken stop)
    {
        for (var i = 0; !stop.IsCancellationRequested && i < 100_000; i++)
        {
            var response = (i % 4) switch
            {
                0 => await client.GetAsync($"/api/v1/workspaces/{ids[i % ids.Count]}", CancellationToken.None),
                1 => await client.GetAsync("/api/v1/workspaces?limit=3", CancellationToken.None),
                2 => await client.PatchAsync($"/api/v1/workspaces/{ids[i % ids.Count]}", JsonContent(new { description = $"d{i}" }), CancellationToken.None),
                _ => await client.PostJsonAsync("/api/v1/workspaces", new { name = "t", slug = $"t-{i}-{Guid.NewGuid():N}" }),
            };
            statuses.Add((int)response.StatusCode);
            await Task.Delay(10, CancellationToken.None);
        }
    }

    private static async Task<string?> ReadinessAsync(HttpClient client, string check)
    {
        var body = JsonDocument.Parse(await client.GetStringAsync("/health/ready", CancellationToken.None)).RootElement;
        return body.GetProperty("checks").GetProperty(check).GetProperty("status").GetString();
    }

    private static StringContent JsonContent(object body) =>
        new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
