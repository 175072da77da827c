using System.Text.Json.Nodes;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using YamlDotNet.RepresentationModel;

namespace Agentry.Tests.Mesh;

/// <summary>
/// <c>agentry gateway kong --sync URL</c>, run as the real program against a recorded-contract listener for Kong's Admin
/// API (<see cref="KongAdminStandIn"/>): no Kong can be installed on these machines.
/// </summary>
public sealed class KongSyncTests
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Agentry__Kong__Nodes__0"] = "api-1:8080", ["Agentry__Kong__Nodes__1"] = "api-2:8080", ["Agentry__Kong__AdminToken"] = "kong-rbac-token",
    };

    [Fact]
    public async Task Against_a_recorded_contract_listener_a_sync_upserts_what_the_printed_configuration_lists_removes_only_its_own_stale_entities_and_a_second_run_changes_nothing()
    {
        var kong = new KongAdminStandIn("postgres");
        await using var server = await StandInServer.StartAsync(kong.Map);
        // What someone made by hand stays; what an earlier sync made and is no longer wanted goes.
        var managed = new JsonArray("managed-by-agentry");
        kong.Services["agentry"] = new JsonObject { ["id"] = "11111111-1111-1111-1111-111111111111", ["name"] = "agentry", ["host"] = "old" };
        kong.Routes["by-hand"] = new JsonObject { ["id"] = "22222222-2222-2222-2222-222222222222", ["name"] = "by-hand", ["service"] = new JsonObject { ["id"] = "11111111-1111-1111-1111-111111111111" } };
        kong.Routes["agentry-api-v1-gone"] = new JsonObject { ["id"] = "33333333-3333-3333-3333-333333333333", ["name"] = "agentry-api-v1-gone", ["tags"] = managed.DeepClone(), ["service"] = new JsonObject { ["id"] = "11111111-1111-1111-1111-111111111111" } };
        kong.Upstreams["agentry-nodes"] = new JsonObject { ["id"] = "44444444-4444-4444-4444-444444444444", ["name"] = "agentry-nodes" };
        kong.Targets["agentry-nodes"] = new() { ["api-9:8080"] = new JsonObject { ["id"] = "55555555-5555-5555-5555-555555555555", ["target"] = "api-9:8080", ["tags"] = managed.DeepClone() } };
        kong.Plugins["66666666-6666-6666-6666-666666666666"] = new JsonObject { ["id"] = "66666666-6666-6666-6666-666666666666", ["name"] = "key-auth", ["tags"] = managed.DeepClone(), ["service"] = new JsonObject { ["id"] = "11111111-1111-1111-1111-111111111111" } };
        kong.Plugins["77777777-7777-7777-7777-777777777777"] = new JsonObject { ["id"] = "77777777-7777-7777-7777-777777777777", ["name"] = "acl", ["service"] = new JsonObject { ["id"] = "11111111-1111-1111-1111-111111111111" } };

        var printed = await PrintedAsync();
        var output = await SyncAsync(server.BaseUri, expectExit: 0);
        Assert.Contains("3 stale entities removed", output);

        var service = kong.Services["agentry"];
        Assert.Equal(("11111111-1111-1111-1111-111111111111", "agentry-nodes"), (service["id"]!.GetValue<string>(), service["host"]!.GetValue<string>()));
        var ours = kong.Routes.Values.Where(r => r["service"]?["id"]?.GetValue<string>() == "11111111-1111-1111-1111-111111111111").Select(r => r["name"]!.GetValue<string>()).Order();
        Assert.Equal(printed.Routes.Append("by-hand").Order(), ours);
        Assert.Equal(printed.Routes.Count, kong.Routes.Values.Count(r => (string?)r["paths"]?[0] is { } path && path.StartsWith('/')));
        Assert.Equal(["api-1:8080", "api-2:8080"], kong.Targets["agentry-nodes"].Keys.Order());
        Assert.Equal("/health/ready", kong.Upstreams["agentry-nodes"]["healthchecks"]!["active"]!["http_path"]!.GetValue<string>());
        var servicePlugins = kong.Plugins.Values.Where(p => p["service"] is not null).Select(p => p["name"]!.GetValue<string>()).Order();
        Assert.Equal(printed.ServicePlugins.Append("acl").Order(), servicePlugins);
        var uploadLimit = Assert.Single(kong.Plugins.Values, p => p["route"] is not null);
        Assert.Equal(kong.Routes["agentry-api-v1-collections"]["id"]!.GetValue<string>(), uploadLimit["route"]!["id"]!.GetValue<string>());
        Assert.Equal(21, uploadLimit["config"]!["allowed_payload_size"]!.GetValue<int>());

        // Only the documented verbs, each call with the Admin API token; nothing created with POST.
        Assert.All(server.Requests, r => Assert.Equal("kong-rbac-token", r.Headers["Kong-Admin-Token"]));
        Assert.DoesNotContain(server.Requests, r => r.Method == "POST");

        var before = kong.Snapshot();
        var requests = server.Requests.Count;
        Assert.Contains("0 stale entities removed", await SyncAsync(server.BaseUri, expectExit: 0));
        Assert.Equal(before, kong.Snapshot());
        Assert.DoesNotContain(server.Requests.Skip(requests), r => r.Method is "DELETE" or "POST");
    }

    [Fact]
    public async Task Against_a_recorded_contract_listener_a_DB_less_Kong_loads_the_printed_document_and_is_not_reloaded_when_it_is_unchanged()
    {
        var kong = new KongAdminStandIn("off");
        await using var server = await StandInServer.StartAsync(kong.Map);

        Assert.Contains("loaded the configuration", await SyncAsync(server.BaseUri, expectExit: 0));
        var post = Assert.Single(server.Requests, r => r.Method == "POST");
        Assert.Equal("/config", post.Path);
        Assert.Equal(Normalize(string.Join('\n', (await PrintAsync()).Stdout)), Normalize(kong.LoadedConfig!));

        Assert.Contains("already runs this configuration", await SyncAsync(server.BaseUri, expectExit: 0));
        Assert.Equal(2, server.Requests.Count(r => r.Method == "POST"));
        Assert.DoesNotContain(server.Requests, r => r.Method is "PUT" or "DELETE");
    }

    [Fact]
    public async Task A_refused_entity_an_unreachable_admin_api_or_a_bad_url_ends_the_sync_with_one_line_naming_it()
    {
        var kong = new KongAdminStandIn("postgres") { RefuseServices = "read_timeout: value should be between 1 and 2147483646" };
        await using (var server = await StandInServer.StartAsync(kong.Map))
        {
            var refused = await SyncAsync(server.BaseUri, expectExit: 1);
            Assert.Contains("Kong refused PUT /services/agentry: 400 schema violation (read_timeout", refused);
        }
        Assert.Contains("cannot reach Kong's Admin API at http://127.0.0.1:", await SyncAsync(new Uri($"http://127.0.0.1:{RedisProcess.FreePort()}"), expectExit: 1));
        Assert.Contains("--sync takes the URL of Kong's Admin API", await SyncAsync(new Uri("ftp://kong:8001"), expectExit: 2));
    }

    /// <summary>Runs the sync; its one line (stdout on success, stderr on failure), which must not hold the token.</summary>
    private static async Task<string> SyncAsync(Uri admin, int expectExit)
    {
        await using var agentry = AgentryProcess.Start(TempFiles.Directory(), Settings, "gateway", "kong", "--sync", admin.ToString());
        var exit = await agentry.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var lines = (exit == 0 ? agentry.Stdout : agentry.Stderr).Where(l => l.StartsWith("agentry:", StringComparison.Ordinal) || l.StartsWith("Kong at", StringComparison.Ordinal)).ToList();
        Assert.True(exit == expectExit, $"exit {exit}, expected {expectExit}: {string.Join('\n', agentry.Stdout.Concat(agentry.Stderr))}");
        Assert.DoesNotContain(agentry.Stdout.Concat(agentry.Stderr), l => l.Contains("kong-rbac-token", StringComparison.Ordinal));
        return Assert.Single(lines);
    }

    private static async Task<AgentryProcess> PrintAsync()
    {
        var agentry = AgentryProcess.Start(TempFiles.Directory(), Settings, "gateway", "kong");
        Assert.Equal(0, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        return agentry;
    }

    /// <summary>The route names and service plugins of the printed configuration.</summary>
    private static async Task<(List<string> Routes, List<string> ServicePlugins)> PrintedAsync()
    {
        await using var agentry = await PrintAsync();
        var yaml = new YamlStream();
        yaml.Load(new StringReader(string.Join('\n', agentry.Stdout)));
        var service = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"]).Single();
        static string Name(YamlNode node) => ((YamlScalarNode)((YamlMappingNode)node)["name"]).Value!;
        return (((YamlSequenceNode)service["routes"]).Select(Name).ToList(), ((YamlSequenceNode)service["plugins"]).Select(Name).ToList());
    }

    private static string Normalize(string yaml) => yaml.Replace("\r", "", StringComparison.Ordinal).Trim();
}
