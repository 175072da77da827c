using Agentry.Mesh;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using YamlDotNet.RepresentationModel;

namespace Agentry.Tests.Mesh;

/// <summary><c>agentry gateway kong</c>: Kong's declarative configuration, generated from the running program's own route table.</summary>
public sealed class KongConfigurationTests
{
    [Fact]
    public async Task The_printed_configuration_is_decK_yaml_with_a_route_per_route_group_the_nodes_their_checks_and_the_plugins()
    {
        await using var agentry = AgentryProcess.Start(TempFiles.Directory(), new Dictionary<string, string>
        {
            ["Agentry__Kong__Nodes__0"] = "api-1:8080", ["Agentry__Kong__Nodes__1"] = "api-2:8080",
            ["Agentry__Hosting__CorsOrigins__0"] = "https://console.example.com",
        }, "gateway", "kong");
        Assert.Equal(0, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var yaml = new YamlStream();
        yaml.Load(new StringReader(string.Join('\n', agentry.Stdout)));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        Assert.Equal("3.0", Scalar(root, "_format_version"));
        Assert.Equal(YamlDotNet.Core.ScalarStyle.DoubleQuoted, ((YamlScalarNode)root["_format_version"]).Style);

        var service = (YamlMappingNode)((YamlSequenceNode)root["services"]).Single();
        Assert.Equal(("agentry", "agentry-nodes"), (Scalar(service, "name"), Scalar(service, "host")));
        var routes = ((YamlSequenceNode)service["routes"]).Cast<YamlMappingNode>().ToList();
        var paths = routes.SelectMany(r => ((YamlSequenceNode)r["paths"]).Select(p => ((YamlScalarNode)p).Value!)).ToList();
        Assert.Equal(await RouteGroupsAsync(), paths);
        Assert.Superset(new HashSet<string> { "/api/v1/agents", "/api/v1/tasks", "/api/v1/collections", "/v1", "/mcp", "/connect", "/health", "/console" }, paths.ToHashSet());
        Assert.DoesNotContain("/metrics", paths);
        Assert.All(routes, r => Assert.Equal(("false", "false", "true"), (Scalar(r, "strip_path"), Scalar(r, "response_buffering"), Scalar(r, "preserve_host"))));
        Assert.Equal(routes.Count, routes.Select(r => Scalar(r, "name")).Distinct().Count());
        // Document uploads may be larger than any other body.
        var uploads = routes.Single(r => Scalar(r, "name") == "agentry-api-v1-collections");
        Assert.Equal("21", Scalar((YamlMappingNode)((YamlMappingNode)((YamlSequenceNode)uploads["plugins"]).Single())["config"], "allowed_payload_size"));

        var upstream = (YamlMappingNode)((YamlSequenceNode)root["upstreams"]).Single();
        Assert.Equal(["api-1:8080", "api-2:8080"], ((YamlSequenceNode)upstream["targets"]).Cast<YamlMappingNode>().Select(t => Scalar(t, "target")));
        var active = (YamlMappingNode)((YamlMappingNode)upstream["healthchecks"])["active"];
        Assert.Equal(("http", "/health/ready"), (Scalar(active, "type"), Scalar(active, "http_path")));

        // The plugins belong to the service: a Kong fronting other services keeps its own limits for them.
        Assert.False(root.Children.ContainsKey("plugins"));
        var plugins = ((YamlSequenceNode)service["plugins"]).Cast<YamlMappingNode>().ToDictionary(p => Scalar(p, "name"));
        Assert.Equal(["cors", "prometheus", "rate-limiting", "request-size-limiting"], plugins.Keys.Order());
        Assert.Equal("1", Scalar((YamlMappingNode)plugins["request-size-limiting"]["config"], "allowed_payload_size"));
        Assert.Equal("https://console.example.com", ((YamlScalarNode)((YamlSequenceNode)((YamlMappingNode)plugins["cors"]["config"])["origins"]).Single()).Value);
    }

    /// <summary>The route groups of the program's endpoints, as a node in the test sees them.</summary>
    private static async Task<IReadOnlyList<string>> RouteGroupsAsync()
    {
        await using var app = AgentryApp.Sqlite();
        app.Client();
        return KongConfiguration.RouteGroups([app.Services.GetRequiredService<EndpointDataSource>()]);
    }

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;
}
