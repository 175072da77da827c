using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using Agentry.Data;
using Agentry.Mesh;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Tests.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Agentry.Tests.Deploy;

/// <summary>
/// Keeps <c>deploy/</c> true to the code: no container engine runs here, so the compose file is checked against the
/// settings Agentry binds and validates, and the alert rules and dashboard against the series a running node exports.
/// </summary>
public sealed class DeployFilesTests
{
    private static readonly string[] OneShotConditions = ["service_completed_successfully"];

    [Fact]
    public void Compose_runs_two_api_and_two_worker_nodes_of_one_image_and_Kong_balances_the_api_nodes()
    {
        var agentry = DeployFiles.AgentryServices();
        var roles = agentry.Select(s => (s.Key, Role: DeployFiles.Environment(s.Value).GetValueOrDefault("Agentry__Role"))).Where(s => s.Role is not null).ToList();

        Assert.Equal(2, roles.Count(r => r.Role == "api"));
        Assert.Equal(2, roles.Count(r => r.Role == "worker"));
        Assert.Single(agentry.Values.Select(s => (string)s["image"]).Distinct());
        foreach (var (name, _) in roles)
        {
            var env = DeployFiles.Environment(agentry[name]);
            // Consul's registration names the node by the address other containers reach it at: its service name.
            Assert.Equal(name, env["Agentry__Consul__AdvertiseAddress"]);
            Assert.Equal("8080", env["ASPNETCORE_HTTP_PORTS"]);
        }
        var kongNodes = DeployFiles.Environment(agentry["kong-config"]).Where(e => e.Key.StartsWith("Agentry__Kong__Nodes__", StringComparison.Ordinal)).Select(e => e.Value);
        Assert.Equal(roles.Where(r => r.Role == "api").Select(r => $"{r.Key}:8080").Order(), kongNodes.Order());
        Assert.Contains("gateway kong", string.Join(' ', DeployFiles.List(agentry["kong-config"]["entrypoint"])));
        Assert.Equal("/kong/kong.yml", DeployFiles.Environment(DeployFiles.Services()["kong"])["KONG_DECLARATIVE_CONFIG"]);
    }

    [Fact]
    public void Every_service_has_a_memory_limit_and_every_long_running_one_a_healthcheck_that_its_dependents_wait_for()
    {
        var services = DeployFiles.Services();
        var oneShot = services.Values.Where(s => s.ContainsKey("depends_on")).SelectMany(s => DeployFiles.Map(s["depends_on"]))
            .Where(d => OneShotConditions.Contains((string)DeployFiles.Map(d.Value)["condition"])).Select(d => (string)d.Key).ToHashSet();

        Assert.True(services.Count >= 15, string.Join(", ", services.Keys));
        foreach (var (name, service) in services)
        {
            Assert.True(MemoryLimit(service) is { Length: > 0 }, $"{name} has no memory limit");
            if (oneShot.Contains(name))
            {
                Assert.Equal("no", service["restart"]);
                continue;
            }
            Assert.True(service.TryGetValue("healthcheck", out var check) && DeployFiles.Map(check).ContainsKey("test"), $"{name} has no healthcheck");
            foreach (var (dependency, condition) in service.TryGetValue("depends_on", out var deps) ? DeployFiles.Map(deps) : [])
            {
                var wanted = (string)DeployFiles.Map(condition)["condition"];
                Assert.True(wanted == "service_healthy" || OneShotConditions.Contains(wanted), $"{name} waits for {dependency} with {wanted}");
            }
        }
        foreach (var node in DeployFiles.AgentryServices().Where(s => DeployFiles.Environment(s.Value).ContainsKey("Agentry__Role")))
        {
            Assert.Contains("/health/ready", string.Join(' ', DeployFiles.List(DeployFiles.Map(node.Value["healthcheck"])["test"])));
        }
    }

    [Fact]
    public void Every_variable_the_compose_file_uses_is_in_env_example_and_every_example_is_used()
    {
        var used = DeployFiles.Variables(DeployFiles.Read("docker-compose.yml"));
        var example = DeployFiles.EnvExample();

        Assert.Empty(used.Except(example.Keys));
        Assert.Empty(example.Keys.Except(used));
    }

    [Fact]
    public void Every_Agentry_setting_in_compose_is_a_key_the_app_binds_and_passes_its_validation()
    {
        var example = DeployFiles.EnvExample();
        var sections = OptionsSections();
        Assert.Contains(StorageOptions.SectionName, sections.Keys);

        foreach (var (name, service) in DeployFiles.AgentryServices())
        {
            var settings = new Dictionary<string, string?>();
            foreach (var (variable, raw) in DeployFiles.Environment(service))
            {
                if (variable.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || variable.StartsWith("DOTNET_", StringComparison.Ordinal))
                {
                    continue;
                }
                Assert.True(variable.StartsWith("Agentry__", StringComparison.Ordinal) || variable.StartsWith("ConnectionStrings__", StringComparison.Ordinal),
                    $"{name}: {variable} is no Agentry setting (Agentry__… or ConnectionStrings__…)");
                settings[variable.Replace("__", ":", StringComparison.Ordinal)] = DeployFiles.Substitute(raw, example);
            }
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
            var bound = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { Agentry.Tasks.TaskExtensions.RoleKey, "ConnectionStrings:Agentry" };
            Assert.Contains(configuration[Agentry.Tasks.TaskExtensions.RoleKey] ?? "all", new[] { "all", "api", "worker" });

            foreach (var group in settings.Keys.Where(k => !bound.Contains(k)).GroupBy(k => SectionOf(k, sections.Keys)))
            {
                Assert.True(group.Key is not null, $"{name}: no options class binds {string.Join(", ", group)}");
                var options = Bind(sections[group.Key], configuration, group.Key, name);
                Assert.Empty(Validate(options, configuration).Select(error => $"{name}: {error}"));
            }
        }
    }

    [Fact]
    public void Prometheus_finds_the_nodes_in_Consul_and_by_name_and_scrapes_Kongs_status_listener()
    {
        var services = DeployFiles.Services();
        var jobs = DeployFiles.List(DeployFiles.Yaml("prometheus", "prometheus.yml")["scrape_configs"]).Select(DeployFiles.Map).ToDictionary(j => (string)j["job_name"]);
        var agentry = jobs["agentry"];
        var consul = DeployFiles.Map(Assert.Single(DeployFiles.List(agentry["consul_sd_configs"])));
        var nodeEnv = DeployFiles.Environment(services["agentry-api-1"]);

        Assert.Equal(new Uri(nodeEnv["Agentry__Consul__Address"]).Authority, (string)consul["server"]);
        Assert.Equal([new ConsulOptions().ServiceName], DeployFiles.List(consul["services"]).Cast<string>());
        var statics = DeployFiles.List(agentry["static_configs"]).Select(DeployFiles.Map)
            .SelectMany(g => DeployFiles.List(g["targets"]).Cast<string>().Select(t => (Target: t, Role: (string)DeployFiles.Map(g["labels"])["role"])));
        var nodes = DeployFiles.AgentryServices().Select(s => (s.Key, Role: DeployFiles.Environment(s.Value).GetValueOrDefault("Agentry__Role"))).Where(s => s.Role is not null)
            .Select(s => ($"{s.Key}:8080", s.Role!));
        Assert.Equal(nodes.Order(), statics.Order());
        Assert.Contains("__meta_consul_service_metadata_role", DeployFiles.Read("prometheus", "prometheus.yml"));

        var statusPort = DeployFiles.Environment(services["kong"])["KONG_STATUS_LISTEN"].Split(':')[^1];
        Assert.Equal([$"kong:{statusPort}"], DeployFiles.List(DeployFiles.Map(Assert.Single(DeployFiles.List(jobs["kong"]["static_configs"])))["targets"]).Cast<string>());
        var mounts = DeployFiles.List(services["prometheus"]["volumes"]).Cast<string>().ToList();
        foreach (var rules in DeployFiles.List(DeployFiles.Yaml("prometheus", "prometheus.yml")["rule_files"]).Cast<string>())
        {
            Assert.Contains(mounts, m => m.EndsWith($":{rules}:ro", StringComparison.Ordinal) && File.Exists(Path.Combine(DeployFiles.Directory, m.Split(':')[0])));
        }
    }

    [Fact]
    public void The_dashboard_reads_the_provisioned_datasource()
    {
        var datasource = DeployFiles.Map(Assert.Single(DeployFiles.List(DeployFiles.Yaml("grafana", "provisioning", "datasources", "prometheus.yml")["datasources"])));
        using var dashboard = JsonDocument.Parse(DeployFiles.Read("grafana", "dashboards", "agentry.json"));
        var uids = dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Append(p).Select(e => e.GetProperty("datasource").GetProperty("uid").GetString())).Distinct();

        Assert.Equal([(string)datasource["uid"]], uids);
        Assert.Equal("http://prometheus:9090", datasource["url"]);
    }

    [Fact]
    public void Series_names_are_read_from_PromQL_without_functions_labels_ranges_or_groupings()
    {
        Assert.Equal(
            ["api_request_duration_seconds_bucket"],
            DeployFiles.SeriesNames("histogram_quantile(0.95, sum by (le, endpoint) (rate(api_request_duration_seconds_bucket{endpoint!~\".*/events\"}[5m]))) > 1"));
        Assert.Equal(
            ["api_request_total"],
            DeployFiles.SeriesNames("sum by (job) (rate(api_request_total{status=~\"5..\"}[$__rate_interval])) / sum by (job) (rate(api_request_total[5m])) > 0.05"));
        Assert.Equal(["task_dead_letters", "up"], DeployFiles.SeriesNames("max(task_dead_letters) > 1e3 or up{job=\"agentry\"} == 0").Order());
    }

    /// <summary>
    /// Every series an alert or a panel reads is one a node exports, once it has served requests, run a task and called a
    /// model. Left out: <c>up</c> (Prometheus' own) and <c>kong_*</c> (Kong's prometheus plugin).
    /// </summary>
    [Fact]
    public async Task Alerts_and_dashboard_read_only_series_a_running_node_exports()
    {
        var wanted = DeployFiles.AlertExpressions().Concat(DeployFiles.DashboardExpressions())
            .SelectMany(e => DeployFiles.SeriesNames(e.Expr).Select(series => (Series: series, Where: e.Item1)))
            .Where(e => e.Series != "up" && !e.Series.StartsWith("kong_", StringComparison.Ordinal))
            .ToList();
        Assert.Superset(new HashSet<string> { "api_request_total", "api_request_duration_seconds_bucket", "task_queue_depth", "task_dead_letters", "gen_ai_client_token_usage_sum" },
            wanted.Select(w => w.Series).ToHashSet());

        await using var standIn = await StandInServer.StartAsync(server =>
        {
            server.MapGet("/v1/models", () => Results.Text(OpenAiProtocolTests.Models, "application/json"));
            server.MapPost("/v1/chat/completions", OpenAiProtocolTests.CompleteAsync);
        });
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>(TaskQueueSettings.Fast)
        {
            ["Agentry:Llm:Providers:0:Name"] = "standin",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = new Uri(standIn.BaseUri, "/v1").ToString(),
            ["Agentry:Knowledge:IndexDirectory"] = TempFiles.Directory(),
            // Tight enough that a few sign-in attempts are refused: rate_limit_rejections_total appears only then.
            ["Agentry:RateLimits:SignIn:PermitsPerPeriod"] = "1",
            ["Agentry:RateLimits:SignIn:Period"] = "01:00:00",
            ["Agentry:RateLimits:SignIn:Burst"] = "3",
        });
        var exported = await ExportedAfterTrafficAsync(app, wanted.Select(w => w.Series).ToHashSet());

        Assert.Empty(wanted.Where(w => !exported.Contains(w.Series)).Select(w => $"{w.Series} (in {w.Where})").Distinct());
    }

    /// <summary>Requests of every kind (signed in, refused, unknown route, cached reads), a task, a chat; then /metrics.</summary>
    private static async Task<HashSet<string>> ExportedAfterTrafficAsync(AgentryApp app, HashSet<string> wanted)
    {
        using var admin = await app.AdminClientAsync();
        var agent = await (await admin.PostJsonAsync("/api/v1/agents", new { name = "deploy", kind = "llm", model = "standin/plain" })).ReadAsync<JsonElement>(HttpStatusCode.Created);
        var task = await (await admin.PostJsonAsync("/api/v1/tasks", new { agentId = agent.GetProperty("id").GetGuid(), input = new { message = "hello" } }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted);
        (await admin.PostJsonAsync("/api/v1/chat", new { message = "hello", model = "standin/plain" })).EnsureSuccessStatusCode();
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => AgentTaskStatus.IsFinal((await (await admin.GetAsync($"/api/v1/tasks/{task.Id}")).ReadAsync<TaskResponse>()).Status), TimeSpan.FromSeconds(30)));
        for (var i = 0; i < 3; i++)
        {
            (await admin.GetAsync("/api/v1/workspaces?limit=5")).EnsureSuccessStatusCode();
            (await admin.GetAsync("/api/v1/agents")).EnsureSuccessStatusCode();
        }
        await admin.GetAsync("/api/v1/nothing-here");
        (await admin.GetAsync("/health/ready")).EnsureSuccessStatusCode();
        using var stranger = app.Client();
        stranger.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/api/v1/me")).StatusCode);
        var signIns = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = "nobody@agentry.test", ["password"] = "wrong",
            });
            signIns.Add((await stranger.PostAsync("/connect/token", form)).StatusCode);
        }
        Assert.Contains(HttpStatusCode.TooManyRequests, signIns);

        var exported = new HashSet<string>();
        await HttpAssertions.EventuallyAsync(async () =>
        {
            exported = DeployFiles.ExportedNames(await admin.GetStringAsync("/metrics"));
            return wanted.IsSubsetOf(exported);
        }, TimeSpan.FromSeconds(10));
        return exported;
    }

    private static string? MemoryLimit(Dictionary<object, object> service) =>
        service.TryGetValue("mem_limit", out var limit) ? (string)limit
        : service.TryGetValue("deploy", out var deploy) && DeployFiles.Map(deploy).TryGetValue("resources", out var resources)
            && DeployFiles.Map(resources).TryGetValue("limits", out var limits) && DeployFiles.Map(limits).TryGetValue("memory", out var memory) ? (string)memory
        : null;

    /// <summary>Every options class of the program, by its configuration section (<c>SectionName</c>).</summary>
    private static Dictionary<string, Type> OptionsSections() =>
        typeof(Program).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && t.GetConstructor(Type.EmptyTypes) is not null)
            .Select(t => (Type: t, Field: t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)))
            .Where(t => t.Field is { IsLiteral: true } && t.Field.FieldType == typeof(string))
            .ToDictionary(t => (string)t.Field!.GetRawConstantValue()!, t => t.Type, StringComparer.OrdinalIgnoreCase);

    /// <summary>The most specific section a key belongs to (<c>Agentry:Knowledge:Retrieval</c> before <c>Agentry:Knowledge</c>).</summary>
    private static string? SectionOf(string key, IEnumerable<string> sections) =>
        sections.Where(s => key.StartsWith(s + ":", StringComparison.OrdinalIgnoreCase)).OrderByDescending(s => s.Length).FirstOrDefault();

    /// <summary>Binds a section the way the program does, but refusing keys no property takes (a typo would be ignored at run time).</summary>
    private static object Bind(Type type, IConfiguration configuration, string section, string service)
    {
        // Only this section's own keys: a nested section with an options class of its own is checked there.
        var own = configuration.AsEnumerable().Where(e => e.Value is not null && OptionsSections().Keys.Where(s => e.Key.StartsWith(s + ":", StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(s => s.Length).FirstOrDefault() is { } owner && owner.Equals(section, StringComparison.OrdinalIgnoreCase));
        var scoped = new ConfigurationBuilder().AddInMemoryCollection(own).Build().GetSection(section);
        var instance = Activator.CreateInstance(type)!;
        try
        {
            scoped.Bind(instance, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            Assert.Fail($"{service}: {section}: {ex.Message}");
        }
        return instance;
    }

    /// <summary>The checks the program runs at start: data annotations, then the section's <see cref="IValidateOptions{TOptions}"/>.</summary>
    private static List<string> Validate(object options, IConfiguration configuration)
    {
        if (options is StorageOptions storage)
        {
            // As AddStorage does: the connection string comes from ConnectionStrings:Agentry.
            storage.ConnectionString ??= configuration.GetConnectionString("Agentry");
        }
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        var errors = results.Select(r => r.ErrorMessage ?? "").ToList();
        var contract = typeof(IValidateOptions<>).MakeGenericType(options.GetType());
        // A validator may read other sections (model discovery needs a Consul address), as it does in the program.
        using var services = new ServiceCollection().AddSingleton(configuration).BuildServiceProvider();
        foreach (var validator in typeof(Program).Assembly.GetTypes().Where(t => t.IsClass && contract.IsAssignableFrom(t)))
        {
            var instance = ActivatorUtilities.CreateInstance(services, validator);
            var result = (ValidateOptionsResult)contract.GetMethod(nameof(IValidateOptions<object>.Validate))!.Invoke(instance, [Options.DefaultName, options])!;
            errors.AddRange(result.Failures ?? []);
        }
        return errors;
    }
}
