using System.Globalization;
using System.Net;
using System.Text.Json;
using Agentry.Hosting;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Mesh;

/// <summary>
/// Model endpoints discovered from Consul. No Consul agent can be installed on these machines, so the tests run against a
/// recorded-contract listener: a stand-in that answers <c>GET /v1/health/service/{name}</c> in the documented shape
/// (node, service, checks), with <c>X-Consul-Index</c>, holding a blocking query (<c>index</c>, <c>wait</c>) until the set
/// changes or the wait is over. The model servers are OpenAI-compatible stand-ins (<see cref="OpenAiProtocolTests"/>'s).
/// </summary>
public sealed class ConsulModelDiscoveryTests : IAsyncLifetime
{
    private const string Token = "consul-acl-token-value";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private static readonly ChatMessage[] Hello = [new(ChatRole.User, "Say hello")];

    private readonly List<IAsyncDisposable> _resources = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Against_a_recorded_contract_listener_chats_are_balanced_over_the_passing_instances_and_follow_their_changes()
    {
        var (a, b, c) = (await ModelServerAsync(), await ModelServerAsync(), await ModelServerAsync());
        var consul = new ConsulCatalog();
        // b registered no service address: Consul's rule is to use its node's.
        consul.Set(consul.Instance("node-a", a), consul.Instance("node-b", b, serviceAddress: ""));
        var server = await ConsulAsync(consul);
        var app = App(server);
        var model = await ResolveAsync(app);

        await ChatAsync(model, 6);
        Assert.Equal((3, 3, 0), (Chats(a), Chats(b), Chats(c)));

        var queries = Queries(server);
        Assert.All(queries, q => Assert.Equal("true", q.Query["passing"]));
        Assert.All(queries, q => Assert.Equal(Token, q.Headers["X-Consul-Token"]));
        Assert.False(queries[0].Query.ContainsKey("index"));
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(Queries(server).Count >= 2), Patience), "no blocking query followed the first answer");
        var blocking = Queries(server)[1];
        Assert.Equal((consul.Index.ToString(CultureInfo.InvariantCulture), "30s"), (blocking.Query["index"], blocking.Query["wait"]));

        // One instance leaves, another comes: the held query returns at once, and chats follow.
        consul.Set(consul.Instance("node-b", b, serviceAddress: ""), consul.Instance("node-c", c));
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            await ChatAsync(model, 1);
            return Chats(c) > 0;
        }, TimeSpan.FromSeconds(5)), "the added instance was never asked");
        var before = (Chats(a), Chats(b), Chats(c));
        await ChatAsync(model, 6);
        Assert.Equal((before.Item1, before.Item2 + 3, before.Item3 + 3), (Chats(a), Chats(b), Chats(c)));

        // Consul goes away: the last instances it listed keep answering, and readiness says degraded, not down.
        consul.GoDown();
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(consul.Refused > 0), Patience), "discovery never asked the failing agent");
        before = (Chats(a), Chats(b), Chats(c));
        await ChatAsync(model, 4);
        Assert.Equal((before.Item1, before.Item2 + 2, before.Item3 + 2), (Chats(a), Chats(b), Chats(c)));
        var ready = await app.Client().GetAsync("/health/ready", Ct);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var check = JsonDocument.Parse(await ready.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("checks").GetProperty("model-discovery");
        Assert.Equal("degraded", check.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Against_a_recorded_contract_listener_a_service_without_passing_instances_makes_its_models_unavailable_until_one_passes()
    {
        var a = await ModelServerAsync();
        var consul = new ConsulCatalog();
        var server = await ConsulAsync(consul);
        var app = App(server);
        var catalog = app.Services.GetRequiredService<ModelCatalog>();
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(Queries(server).Count >= 1), Patience), "discovery never asked");

        var unavailable = await Assert.ThrowsAsync<DependencyUnavailableException>(() => catalog.ResolveAsync("pool/plain", TestCaller.Instance, Ct));
        Assert.Contains("Consul lists no passing instance of service 'vllm'", unavailable.Message);

        consul.Set(consul.Instance("node-a", a));
        var model = await ResolveAsync(app);
        await ChatAsync(model, 2);
        Assert.Equal(2, Chats(a));
    }

    [Fact]
    public async Task Against_a_recorded_contract_listener_the_embedding_server_is_discovered_too_and_follows_its_changes()
    {
        var (a, b) = (await EmbeddingServerAsync(), await EmbeddingServerAsync());
        var consul = new ConsulCatalog("embedder");
        consul.Set(consul.Instance("node-a", a));
        var server = await ConsulAsync(consul);
        var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Consul:Address"] = server.BaseUri.ToString(),
            ["Agentry:Consul:Token"] = Token,
            ["Agentry:Consul:AdvertisePort"] = "8080",
            ["Agentry:Embeddings:Provider"] = "ollama",
            ["Agentry:Embeddings:Model"] = "all-minilm",
            ["Agentry:Embeddings:ConsulService"] = "embedder",
            ["Agentry:Llm:FailureDuration"] = "00:00:00.200",
            ["Agentry:Llm:BreakDuration"] = "00:30:00",
        });
        _resources.Add(app);
        var generator = app.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();

        // No endpoint is configured: the first embedding waits for Consul's answer.
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            try
            {
                return (await generator.GenerateAsync(["hello"], cancellationToken: Ct)).Count == 1;
            }
            catch (DependencyUnavailableException)
            {
                return false;
            }
        }, Patience), "the embedding server was never discovered");
        Assert.Equal((1, 0), (Embeds(a), Embeds(b)));
        Assert.All(Queries(server, "embedder"), q => Assert.Equal(Token, q.Headers["X-Consul-Token"]));
        Assert.NotEmpty(Queries(server, "embedder"));

        // Consul now lists b instead of a: embeddings follow.
        consul.Set(consul.Instance("node-b", b));
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            await generator.GenerateAsync(["hello"], cancellationToken: Ct);
            return Embeds(b) > 0;
        }, TimeSpan.FromSeconds(5)), "the new instance was never asked");
        var before = (Embeds(a), Embeds(b));
        for (var i = 0; i < 3; i++)
        {
            await generator.GenerateAsync(["hello"], cancellationToken: Ct);
        }
        Assert.Equal((before.Item1, before.Item2 + 3), (Embeds(a), Embeds(b)));
        var ready = await app.Client().GetAsync("/health/ready", Ct);
        var check = JsonDocument.Parse(await ready.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("checks").GetProperty("model-discovery");
        Assert.Equal("healthy", check.GetProperty("status").GetString());
    }

    [Fact]
    public void Embedding_discovery_settings_are_checked_as_a_model_providers_are()
    {
        var withoutConsul = new ConfigurationBuilder().Build();
        var withConsul = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Agentry:Consul:Address"] = "http://127.0.0.1:8500" }).Build();

        var bad = new EmbeddingOptionsValidator(withoutConsul).Validate(null,
            new EmbeddingOptions { Provider = "ollama", Model = "all-minilm", ConsulService = "no spaces", ConsulPath = "v1", ConsulScheme = "ftp" });
        string[] expected =
        [
            "Agentry:Embeddings:ConsulService is 'no spaces'",
            "Agentry:Embeddings:ConsulService needs Agentry:Consul:Address",
            "Agentry:Embeddings:ConsulPath is 'v1'",
            "Agentry:Embeddings:ConsulScheme is 'ftp'",
        ];
        Assert.Equal(expected.Length, bad.Failures!.Count());
        Assert.All(expected, e => Assert.Contains(bad.Failures!, f => f.StartsWith(e, StringComparison.Ordinal)));
        // A service to follow stands in for the endpoints; the path needs the service; MiniLM runs in-process and takes none of it.
        Assert.True(new EmbeddingOptionsValidator(withConsul).Validate(null,
            new EmbeddingOptions { Provider = "openai", Model = "text-embedding-3-small", ConsulService = "embedder", ConsulPath = "/v1" }).Succeeded);
        Assert.Contains("Agentry:Embeddings:ConsulPath applies only with Agentry:Embeddings:ConsulService", new EmbeddingOptionsValidator(withConsul).Validate(null,
            new EmbeddingOptions { Provider = "ollama", Model = "all-minilm", Endpoints = ["http://127.0.0.1:11434"], ConsulPath = "/v1" }).FailureMessage);
        Assert.Contains("apply to providers ollama and openai only", new EmbeddingOptionsValidator(withConsul).Validate(null,
            new EmbeddingOptions { ConsulService = "embedder" }).FailureMessage);
    }

    [Fact]
    public async Task A_consul_service_without_a_consul_address_stops_start_up_naming_both_keys()
    {
        var directory = TempFiles.Directory();
        await using var agentry = AgentryProcess.Start(directory, new Dictionary<string, string>
        {
            ["Agentry__Llm__Providers__0__Name"] = "pool",
            ["Agentry__Llm__Providers__0__Kind"] = "openai",
            ["Agentry__Llm__Providers__0__ConsulService"] = "vllm",
        }, "--urls", $"http://127.0.0.1:{RedisProcess.FreePort()}");

        Assert.Equal(2, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(agentry.Stderr, l => l.Length > 0);
        Assert.StartsWith("agentry: configuration error:", line);
        Assert.Contains("Agentry:Llm:Providers:0:ConsulService needs Agentry:Consul:Address", line);
    }

    /// <summary>An OpenAI-compatible model server stand-in: lists the models and answers chats.</summary>
    private async Task<StandInServer> ModelServerAsync()
    {
        var server = await StandInServer.StartAsync(app =>
        {
            app.MapGet("/v1/models", () => Results.Text(OpenAiProtocolTests.Models, "application/json"));
            app.MapPost("/v1/chat/completions", OpenAiProtocolTests.CompleteAsync);
        });
        _resources.Add(server);
        return server;
    }

    /// <summary>An Ollama embedding server stand-in (<c>POST /api/embed</c>, the documented answer): one 3-number vector per input.</summary>
    private async Task<StandInServer> EmbeddingServerAsync()
    {
        var server = await StandInServer.StartAsync(app => app.MapPost("/api/embed", (JsonElement request) => Results.Json(new
        {
            model = request.GetProperty("model").GetString(),
            embeddings = request.GetProperty("input").EnumerateArray().Select(_ => new[] { 0.6f, 0.8f, 0f }).ToArray(),
            prompt_eval_count = 1,
        })));
        _resources.Add(server);
        return server;
    }

    private static int Embeds(StandInServer server) => server.Requests.Count(r => r.Method == "POST" && r.Path == "/api/embed");

    /// <summary>The agent's endpoints Agentry uses: the health query of a service, and (for the node's own registration) register and deregister.</summary>
    private async Task<StandInServer> ConsulAsync(ConsulCatalog catalog)
    {
        var server = await StandInServer.StartAsync(app =>
        {
            app.MapGet("/v1/health/service/{name}", catalog.HealthAsync);
            app.MapPut("/v1/agent/service/register", () => Results.Ok());
            app.MapPut("/v1/agent/service/deregister/{id}", (string id) => Results.Ok());
        });
        _resources.Add(server);
        return server;
    }

    private AgentryApp App(StandInServer consul)
    {
        var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Consul:Address"] = consul.BaseUri.ToString(),
            ["Agentry:Consul:Token"] = Token,
            ["Agentry:Consul:AdvertisePort"] = "8080",
            ["Agentry:Llm:Providers:0:Name"] = "pool",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:ConsulService"] = "vllm",
            ["Agentry:Llm:Providers:0:ConsulPath"] = "/v1",
            // A provider that had no endpoints yet is asked again soon.
            ["Agentry:Llm:FailureDuration"] = "00:00:00.200",
            // Long enough that no breaker half-opens during a test.
            ["Agentry:Llm:BreakDuration"] = "00:30:00",
        });
        _resources.Add(app);
        return app;
    }

    /// <summary>The model, once discovery has given its provider endpoints.</summary>
    private static async Task<ChatModel> ResolveAsync(AgentryApp app)
    {
        var catalog = app.Services.GetRequiredService<ModelCatalog>();
        ChatModel? model = null;
        var resolved = await HttpAssertions.EventuallyAsync(async () =>
        {
            try
            {
                model = await catalog.ResolveAsync("pool/plain", TestCaller.Instance, Ct);
                return model is not null;
            }
            catch (DependencyUnavailableException)
            {
                return false;
            }
        }, Patience);
        Assert.True(resolved, "pool/plain never resolved");
        return model!;
    }

    private static async Task ChatAsync(ChatModel model, int times)
    {
        for (var i = 0; i < times; i++)
        {
            Assert.Equal("Hello there", (await model.Client.GetResponseAsync(Hello, cancellationToken: Ct)).Text);
        }
    }

    private static int Chats(StandInServer server) => server.Requests.Count(r => r.Method == "POST" && r.Path == "/v1/chat/completions");

    private static List<StandInRequest> Queries(StandInServer consul, string service = "vllm") =>
        [.. consul.Requests.Where(r => r.Method == "GET" && r.Path == $"/v1/health/service/{service}")];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var resource in Enumerable.Reverse(_resources))
        {
            await resource.DisposeAsync();
        }
    }

    /// <summary>
    /// The catalog's side of Consul's health endpoint: the passing instances of one service (<c>vllm</c> unless named), a Raft index that grows with
    /// every change, and blocking queries as documented (an <c>index</c> at or above the current one waits for a change, at most
    /// <c>wait</c>). Once down, it answers 500 as an agent without a cluster leader does.
    /// </summary>
    private sealed class ConsulCatalog(string service = "vllm")
    {
        private readonly Lock _gate = new();
        private IReadOnlyList<object> _instances = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private ulong _index = 40;
        private bool _down;
        private int _refused;

        public ulong Index
        {
            get { lock (_gate) { return _index; } }
        }

        public int Refused => Volatile.Read(ref _refused);

        /// <summary>One entry as Consul writes it: the node, the service instance, and the checks that pass for it.</summary>
        public object Instance(string node, StandInServer server, string? serviceAddress = null) => new
        {
            Node = new { ID = Guid.NewGuid(), Node = node, Address = server.BaseUri.Host, Datacenter = "dc1", TaggedAddresses = new { lan = server.BaseUri.Host }, Meta = new { }, CreateIndex = 12, ModifyIndex = 12 },
            Service = new
            {
                ID = $"{service}-{node}", Service = service, Tags = new[] { "gpu" }, Address = serviceAddress ?? server.BaseUri.Host, Port = server.BaseUri.Port,
                Meta = new { version = "0.8.5" }, Weights = new { Passing = 1, Warning = 1 }, EnableTagOverride = false, CreateIndex = 30, ModifyIndex = 30,
            },
            Checks = new object[]
            {
                new { Node = node, CheckID = "serfHealth", Name = "Serf Health Status", Status = "passing", Notes = "", Output = "Agent alive and reachable", ServiceID = "", ServiceName = "", ServiceTags = Array.Empty<string>() },
                new { Node = node, CheckID = $"service:{service}-{node}", Name = $"Service '{service}' check", Status = "passing", Notes = "", Output = "HTTP GET: 200 OK", ServiceID = $"{service}-{node}", ServiceName = service, ServiceTags = new[] { "gpu" } },
            },
        };

        public void Set(params object[] instances) => Change(() => _instances = instances);

        public void GoDown() => Change(() => _down = true);

        private void Change(Action change)
        {
            TaskCompletionSource changed;
            lock (_gate)
            {
                change();
                _index++;
                (changed, _changed) = (_changed, new(TaskCreationOptions.RunContinuationsAsynchronously));
            }
            changed.SetResult();
        }

        public async Task HealthAsync(HttpContext context, string name)
        {
            Task changed;
            ulong index;
            lock (_gate)
            {
                (changed, index) = (_changed.Task, _index);
            }
            if (ulong.TryParse(context.Request.Query["index"], CultureInfo.InvariantCulture, out var seen) && seen >= index)
            {
                await Task.WhenAny(changed, Task.Delay(WaitOf(context.Request.Query["wait"]), context.RequestAborted));
            }
            IReadOnlyList<object> instances;
            bool down;
            lock (_gate)
            {
                (instances, index, down) = (name == service ? _instances : [], _index, _down);
            }
            if (down)
            {
                Interlocked.Increment(ref _refused);
                await Results.Text("No cluster leader", statusCode: 500).ExecuteAsync(context);
                return;
            }
            context.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["X-Consul-KnownLeader"] = "true";
            await context.Response.WriteAsJsonAsync(instances, new JsonSerializerOptions { PropertyNamingPolicy = null });
        }

        /// <summary>A Go duration as Consul takes it (<c>30s</c>, <c>500ms</c>, <c>1m</c>); Consul's default is 5 minutes.</summary>
        private static TimeSpan WaitOf(string? wait) => wait switch
        {
            null or "" => TimeSpan.FromMinutes(5),
            _ when wait.EndsWith("ms", StringComparison.Ordinal) => TimeSpan.FromMilliseconds(double.Parse(wait[..^2], CultureInfo.InvariantCulture)),
            _ when wait.EndsWith('s') => TimeSpan.FromSeconds(double.Parse(wait[..^1], CultureInfo.InvariantCulture)),
            _ when wait.EndsWith('m') => TimeSpan.FromMinutes(double.Parse(wait[..^1], CultureInfo.InvariantCulture)),
            _ => throw new FormatException($"not a Go duration: {wait}"),
        };
    }
}
