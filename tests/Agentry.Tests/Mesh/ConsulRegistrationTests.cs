using System.Net;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Agentry.Tests.Mesh;

/// <summary>
/// Registration with Consul. No Consul agent can be installed on these machines, so each test runs against a
/// recorded-contract listener: a stand-in that answers the agent API's documented endpoints
/// (<c>PUT /v1/agent/service/register</c>, <c>PUT /v1/agent/service/deregister/{id}</c>) and records what it was sent.
/// </summary>
public sealed class ConsulRegistrationTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Against_a_recorded_contract_listener_a_node_registers_with_a_working_ready_check_and_deregisters_on_stop()
    {
        await using var consul = await StandInServer.StartAsync(ConsulRoutes(refuseFirst: 0));
        var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Consul:Address"] = consul.BaseUri.ToString(),
            ["Agentry:Consul:Token"] = "consul-acl-token-value",
            ["Agentry:Consul:Tags:0"] = "blue",
        }, kestrel: true);
        var client = app.Client();

        var register = await RegistrationAsync(consul);
        Assert.Equal("consul-acl-token-value", register.Headers["X-Consul-Token"]);
        var service = register.Body!.Value;
        Assert.Equal("agentry", service.GetProperty("Name").GetString());
        Assert.Equal(("127.0.0.1", app.BaseUri.Port), (service.GetProperty("Address").GetString(), service.GetProperty("Port").GetInt32()));
        var id = service.GetProperty("ID").GetString()!;
        Assert.Equal($"agentry-all-127.0.0.1-{app.BaseUri.Port}", id);
        var tags = service.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()!).ToList();
        Assert.Equal("all", tags[0]);
        Assert.Matches(@"^v\d+\.\d+\.\d+", tags[1]);
        Assert.Contains("blue", tags);
        Assert.Equal("all", service.GetProperty("Meta").GetProperty("role").GetString());
        Assert.Equal(tags[1][1..], service.GetProperty("Meta").GetProperty("version").GetString());
        var check = service.GetProperty("Check");
        Assert.Equal(("GET", "10s", "5s", "60s"), (check.GetProperty("Method").GetString(), check.GetProperty("Interval").GetString(),
            check.GetProperty("Timeout").GetString(), check.GetProperty("DeregisterCriticalServiceAfter").GetString()));
        // The check Consul will run answers as a ready node does.
        var url = check.GetProperty("HTTP").GetString()!;
        Assert.Equal(new Uri(app.BaseUri, "/health/ready"), new Uri(url));
        Assert.True(await HttpAssertions.EventuallyAsync(async () => (await client.GetAsync(url)).StatusCode == HttpStatusCode.OK, Patience), "the ready check never passed");

        await app.DisposeAsync();
        var deregister = Assert.Single(consul.Requests, r => r.Method == "PUT" && r.Path.StartsWith("/v1/agent/service/deregister/", StringComparison.Ordinal));
        Assert.Equal($"/v1/agent/service/deregister/{id}", deregister.Path);
        Assert.Equal("consul-acl-token-value", deregister.Headers["X-Consul-Token"]);
    }

    [Fact]
    public async Task Against_a_recorded_contract_listener_a_refused_registration_is_retried_until_the_agent_takes_it()
    {
        await using var consul = await StandInServer.StartAsync(ConsulRoutes(refuseFirst: 2));
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Consul:Address"] = consul.BaseUri.ToString(), ["Agentry:Role"] = "api", ["Agentry:Consul:ServiceName"] = "agentry-edge",
        }, kestrel: true);
        app.Client();

        var register = await RegistrationAsync(consul, attempts: 3);
        Assert.Equal("agentry-edge", register.Body!.Value.GetProperty("Name").GetString());
        Assert.Equal("api", register.Body!.Value.GetProperty("Meta").GetProperty("role").GetString());
        Assert.False(register.Headers.ContainsKey("X-Consul-Token"));
    }

    /// <summary>The agent API's two endpoints; the first <paramref name="refuseFirst"/> registrations answer 500, as an agent without a leader does.</summary>
    private static Action<WebApplication> ConsulRoutes(int refuseFirst) => server =>
    {
        var registrations = 0;
        server.MapPut("/v1/agent/service/register", (HttpContext context) =>
            Interlocked.Increment(ref registrations) <= refuseFirst || context.Request.Query["replace-existing-checks"] != "true"
                ? Results.Text("No cluster leader", statusCode: 500)
                : Results.Ok());
        server.MapPut("/v1/agent/service/deregister/{id}", (string id) => Results.Ok());
    };

    /// <summary>The registration the agent took, once <paramref name="attempts"/> were made.</summary>
    private static async Task<StandInRequest> RegistrationAsync(StandInServer consul, int attempts = 1)
    {
        List<StandInRequest> made = [];
        var done = await HttpAssertions.EventuallyAsync(
            () => Task.FromResult((made = [.. consul.Requests.Where(r => r.Method == "PUT" && r.Path == "/v1/agent/service/register")]).Count >= attempts), Patience);
        Assert.True(done, $"{made.Count} registrations, {attempts} expected");
        Assert.Equal(attempts, made.Count);
        Assert.All(made, r => Assert.Equal(made[0].Body!.Value.GetRawText(), r.Body!.Value.GetRawText()));
        return made[^1];
    }
}
