using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Agentry.Hosting;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Agentry.Tests.Hosting;

/// <summary>
/// Token buckets through HTTP. Buckets refill once a minute here, so within a test a bucket only drains:
/// what passes and what is refused follows from the burst alone.
/// </summary>
public sealed class RateLimitingTests
{
    [Fact]
    public async Task A_user_over_their_rate_gets_429_with_Retry_After_while_another_user_is_unaffected()
    {
        await using var app = AgentryApp.Sqlite(Limits("Api", burst: 5));
        using var rejections = new RejectionCounter(app);
        var greedy = await app.UserClientAsync();
        var modest = await app.UserClientAsync();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 20; i++)
        {
            var response = await greedy.GetAsync("/api/v1/me");
            statuses.Add(response.StatusCode);
            refused ??= response.StatusCode == HttpStatusCode.TooManyRequests ? response : null;
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.OK, 5).Concat(Enumerable.Repeat(HttpStatusCode.TooManyRequests, 15)), statuses);
        await AssertRateLimitedAsync(refused!, maxSeconds: 60);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await modest.GetAsync("/api/v1/me")).StatusCode);
        }
        // Probes are never limited, whoever asks.
        Assert.Equal(HttpStatusCode.OK, (await greedy.GetAsync("/health")).StatusCode);
        Assert.Equal(15, rejections.Count(RateLimitPolicies.Api));
    }

    [Fact]
    public async Task Members_of_one_workspace_share_its_bucket_on_top_of_their_own()
    {
        await using var app = AgentryApp.Sqlite(Limits("Workspace", burst: 3));
        using var rejections = new RejectionCounter(app);
        var admin = await app.AdminClientAsync();
        var workspace = await (await admin.PostJsonAsync("/api/v1/workspaces", new { name = "busy", slug = "busy" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        var other = await (await admin.PostJsonAsync("/api/v1/workspaces", new { name = "quiet", slug = "quiet" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        var first = await app.UserClientAsync(workspace.Id);
        var second = await app.UserClientAsync(workspace.Id);

        Assert.Equal(HttpStatusCode.OK, (await first.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await first.GetAsync($"/api/v1/workspaces/{workspace.Id}/members")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync($"/api/v1/workspaces/{workspace.Id}")).StatusCode);

        await AssertRateLimitedAsync(await second.GetAsync($"/api/v1/workspaces/{workspace.Id}/members"), maxSeconds: 60);
        await AssertRateLimitedAsync(await first.GetAsync($"/api/v1/workspaces/{workspace.Id.ToString().ToUpperInvariant()}"), maxSeconds: 60);
        // The users' own buckets are untouched, and so is another workspace's.
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/api/v1/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/workspaces/{other.Id}")).StatusCode);
        Assert.Equal(2, rejections.Count(RateLimitPolicies.Workspace));
    }

    [Fact]
    public async Task Sign_ins_from_one_client_address_beyond_the_sign_in_limit_get_429_with_Retry_After()
    {
        await using var app = AgentryApp.Sqlite(Limits("SignIn", burst: 3), kestrel: true);
        using var client = app.Client();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 8; i++)
        {
            var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password",
                ["client_id"] = "agentry-cli",
                ["username"] = AgentryApp.AdminEmail,
                ["password"] = AgentryApp.AdminPassword,
            }));
            statuses.Add(response.StatusCode);
            refused ??= response.StatusCode == HttpStatusCode.TooManyRequests ? response : null;
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.OK, 3).Concat(Enumerable.Repeat(HttpStatusCode.TooManyRequests, 5)), statuses);
        await AssertRateLimitedAsync(refused!, maxSeconds: 60);
    }

    [Fact]
    public async Task Two_nodes_sharing_redis_enforce_one_limit_per_principal()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        var settings = Settings.Cluster(database).With(Limits("Api", burst: 4));
        await using var nodeA = new AgentryApp(settings);
        await using var nodeB = new AgentryApp(settings);
        var (_, greedyEmail, greedyPassword) = await nodeA.CreateUserAsync();
        var (_, modestEmail, modestPassword) = await nodeA.CreateUserAsync();
        HttpClient[] greedy = [await nodeA.SignedInClientAsync(greedyEmail, greedyPassword), await nodeB.SignedInClientAsync(greedyEmail, greedyPassword)];
        HttpClient[] modest = [await nodeA.SignedInClientAsync(modestEmail, modestPassword), await nodeB.SignedInClientAsync(modestEmail, modestPassword)];

        // Ten times the principal's allowance, alternating between the nodes.
        var passed = 0;
        var refusedBy = new HashSet<int>();
        for (var i = 0; i < 40; i++)
        {
            var response = await greedy[i % 2].GetAsync("/api/v1/me");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                passed++;
                continue;
            }
            await AssertRateLimitedAsync(response, maxSeconds: 60);
            refusedBy.Add(i % 2);
        }
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await modest[i % 2].GetAsync("/api/v1/me")).StatusCode);
        }

        // One bucket for both nodes: a bucket per node would have let 8 through.
        Assert.Equal(4, passed);
        Assert.Equal([0, 1], refusedBy.Order());
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        Assert.NotEmpty(redis.GetServers()[0].Keys(pattern: $"*{database.Name}:ratelimit:api:*"));
    }

    /// <summary>
    /// A bucket of 40 tokens (refilled one an hour, so it only drains here) is taken from Redis four tokens at a time:
    /// one request leaves 36 in Redis, and a principal hammering both nodes gets no more than the 40, and no fewer than
    /// 40 less what the two nodes may hold unspent.
    /// </summary>
    [Fact]
    public async Task Two_nodes_take_tokens_from_redis_a_batch_at_a_time_and_still_enforce_one_limit()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        var settings = Settings.Cluster(database).With(new Dictionary<string, string?>
        {
            ["Agentry:RateLimits:Api:PermitsPerPeriod"] = "1",
            ["Agentry:RateLimits:Api:Period"] = "01:00:00",
            ["Agentry:RateLimits:Api:Burst"] = "40",
        });
        await using var nodeA = new AgentryApp(settings);
        await using var nodeB = new AgentryApp(settings);
        var (_, email, password) = await nodeA.CreateUserAsync();
        HttpClient[] clients = [await nodeA.SignedInClientAsync(email, password), await nodeB.SignedInClientAsync(email, password)];
        var batch = TokenBuckets.Batch(new TokenBucketSettings { Burst = 40, PermitsPerPeriod = 1, Period = TimeSpan.FromHours(1) });
        Assert.Equal(4, batch);

        Assert.Equal(HttpStatusCode.OK, (await clients[0].GetAsync("/api/v1/me")).StatusCode);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestServers.Redis);
        var bucket = Assert.Single(redis.GetServers()[0].Keys(pattern: $"*{database.Name}:ratelimit:api:*"), k => !k.ToString().EndsWith(":ts", StringComparison.Ordinal));
        Assert.Equal(40 - batch, (long)await redis.GetDatabase().StringGetAsync(bucket));

        var passed = 1;
        for (var i = 0; i < 100; i++)
        {
            var response = await clients[i % 2].GetAsync("/api/v1/me");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                passed++;
                continue;
            }
            await AssertRateLimitedAsync(response, maxSeconds: 3600);
        }
        // Never more than the bucket; less by what the two nodes still hold, or dropped when a slow moment left a batch
        // unspent for its second (allowed once per node here).
        Assert.InRange(passed, 40 - 4 * (batch - 1), 40);
        Assert.Equal(0, (long)await redis.GetDatabase().StringGetAsync(bucket));
    }

    [Fact]
    public async Task Without_redis_the_limits_hold_per_node_and_no_request_fails()
    {
        // Nothing listens on this port: every Redis call fails at once.
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:Cache:Redis"] = $"127.0.0.1:{RedisProcess.FreePort()}" }
            .With(Limits("Api", burst: 3)));
        var client = await app.UserClientAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await client.GetAsync("/api/v1/me")).StatusCode);
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.OK, 3).Concat(Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)), statuses);
    }

    [Fact]
    public async Task Switched_off_nothing_is_limited()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:RateLimits:Enabled"] = "false" }
            .With(Limits("Api", burst: 1)).With(Limits("SignIn", burst: 1)));
        var client = await app.UserClientAsync();

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me")).StatusCode);
        }
        await app.AdminClientAsync();
    }

    /// <summary>Settings for a bucket of <paramref name="burst"/> tokens that gains one a minute.</summary>
    private static Dictionary<string, string?> Limits(string bucket, int burst) => new()
    {
        [$"Agentry:RateLimits:{bucket}:PermitsPerPeriod"] = "1",
        [$"Agentry:RateLimits:{bucket}:Period"] = "00:01:00",
        [$"Agentry:RateLimits:{bucket}:Burst"] = burst.ToString(),
    };

    private static async Task AssertRateLimitedAsync(HttpResponseMessage response, int maxSeconds)
    {
        await response.AssertProblemAsync(HttpStatusCode.TooManyRequests, "rate_limited");
        var retryAfter = Assert.Single(response.Headers.GetValues("Retry-After"));
        Assert.InRange(int.Parse(retryAfter), 1, maxSeconds);
    }

    /// <summary>rate_limit_rejections_total of one app (its meter factory), by policy.</summary>
    private sealed class RejectionCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _counts = new();

        public RejectionCounter(AgentryApp app)
        {
            var meters = app.Services.GetRequiredService<IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "rate_limit_rejections_total" && instrument.Meter.Scope == meters)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "policy")
                    {
                        _counts.AddOrUpdate((string)tag.Value!, value, (_, count) => count + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Count(string policy) => _counts.GetValueOrDefault(policy);

        public void Dispose() => _listener.Dispose();
    }
}
