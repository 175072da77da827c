using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Agentry.Operations;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Agentry.Mesh;

/// <summary>
/// <c>agentry gateway kong --sync URL</c>: applies <see cref="KongConfiguration"/> through Kong's Admin API, idempotently.
/// A DB-less Kong (<c>GET /</c> says <c>database: off</c>) takes the whole document at <c>POST /config?check_hash=1</c>
/// (unchanged: 304, nothing reloads). A Kong with a database gets each entity upserted by name with <c>PUT</c> (plugins by
/// an id derived from the service, scope and plugin name, so a second run addresses the same rows), then loses what an
/// earlier sync made and this one no longer wants: routes, targets and plugins tagged <c>managed-by-agentry</c> on this
/// service. Entities others made are never touched.
/// </summary>
internal sealed class KongSync(KongConfiguration configuration, IHttpClientFactory clients, IOptions<KongOptions> options)
{
    public const string HttpClientName = "kong-admin";

    private const string ManagedTag = KongConfiguration.ManagedTag;

    public async Task<string> SyncAsync(string url, IEnumerable<EndpointDataSource> sources, CancellationToken ct)
    {
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var admin) || admin.Scheme is not ("http" or "https"))
        {
            throw new OperationException($"--sync takes the URL of Kong's Admin API (http or https), e.g. http://kong:8001; '{url}' is not one.");
        }
        var http = clients.CreateClient(HttpClientName);
        http.BaseAddress = admin;
        if (options.Value.AdminToken is { Length: > 0 } token)
        {
            http.DefaultRequestHeaders.Add("Kong-Admin-Token", token);
        }
        var api = new AdminApi(http, admin);
        var root = await api.SendAsync(HttpMethod.Get, "", null, ct);
        var document = configuration.Build(sources);
        return root?["configuration"]?["database"]?.GetValue<string>() == "off"
            ? await LoadDeclarativeAsync(api, document, ct)
            : await UpsertAsync(api, document, ct);
    }

    private static async Task<string> LoadDeclarativeAsync(AdminApi api, Dictionary<string, object> document, CancellationToken ct)
    {
        var status = await api.SendStatusAsync(HttpMethod.Post, "config?check_hash=1", new JsonObject { ["config"] = KongConfiguration.ToYaml(document) }, ct);
        return status == HttpStatusCode.NotModified
            ? $"Kong at {api.Admin} (DB-less) already runs this configuration."
            : $"Kong at {api.Admin} (DB-less) loaded the configuration.";
    }

    private static async Task<string> UpsertAsync(AdminApi api, Dictionary<string, object> document, CancellationToken ct)
    {
        var service = (Dictionary<string, object>)((IEnumerable<object>)document["services"]).Single();
        var upstream = (Dictionary<string, object>)((IEnumerable<object>)document["upstreams"]).Single();
        var serviceName = (string)service["name"];
        var upstreamName = (string)upstream["name"];

        // The upstream and its targets first, so the service never points at nothing.
        await api.SendAsync(HttpMethod.Put, $"upstreams/{Escape(upstreamName)}", Without(upstream, "targets"), ct);
        var targets = ((IEnumerable<object>)upstream["targets"]).Cast<Dictionary<string, object>>().ToList();
        foreach (var target in targets)
        {
            await api.SendAsync(HttpMethod.Put, $"upstreams/{Escape(upstreamName)}/targets/{Escape((string)target["target"])}", Body(target), ct);
        }

        var serviceId = (await api.SendAsync(HttpMethod.Put, $"services/{Escape(serviceName)}", Without(service, "routes", "plugins"), ct))?["id"]?.GetValue<string>();
        var wantedPlugins = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var plugin in Plugins(service))
        {
            var id = PluginId(serviceName, "service", (string)plugin["name"]);
            wantedPlugins.Add(id);
            await api.SendAsync(HttpMethod.Put, $"services/{Escape(serviceName)}/plugins/{id}", Body(plugin), ct);
        }
        var routes = ((IEnumerable<object>)service["routes"]).Cast<Dictionary<string, object>>().ToList();
        foreach (var route in routes)
        {
            var name = (string)route["name"];
            await api.SendAsync(HttpMethod.Put, $"services/{Escape(serviceName)}/routes/{Escape(name)}", Without(route, "plugins"), ct);
            foreach (var plugin in Plugins(route))
            {
                var id = PluginId(serviceName, name, (string)plugin["name"]);
                wantedPlugins.Add(id);
                await api.SendAsync(HttpMethod.Put, $"routes/{Escape(name)}/plugins/{id}", Body(plugin), ct);
            }
        }

        // What an earlier sync made and this one no longer wants.
        var removed = 0;
        var ourRoutes = await api.ListAsync($"services/{Escape(serviceName)}/routes", ct);
        var ourRouteIds = ourRoutes.Select(r => r["id"]?.GetValue<string>()).ToHashSet();
        foreach (var plugin in await api.ListAsync($"plugins?tags={ManagedTag}", ct))
        {
            var ours = plugin["service"]?["id"]?.GetValue<string>() == serviceId || ourRouteIds.Contains(plugin["route"]?["id"]?.GetValue<string>());
            if (ours && !wantedPlugins.Contains(plugin["id"]!.GetValue<string>()))
            {
                await api.SendAsync(HttpMethod.Delete, $"plugins/{plugin["id"]!.GetValue<string>()}", null, ct);
                removed++;
            }
        }
        var wantedRoutes = routes.Select(r => (string)r["name"]).ToHashSet(StringComparer.Ordinal);
        foreach (var route in ourRoutes.Where(r => Managed(r) && !wantedRoutes.Contains(r["name"]?.GetValue<string>() ?? "")))
        {
            await api.SendAsync(HttpMethod.Delete, $"routes/{route["id"]!.GetValue<string>()}", null, ct);
            removed++;
        }
        var wantedTargets = targets.Select(t => (string)t["target"]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var target in (await api.ListAsync($"upstreams/{Escape(upstreamName)}/targets", ct))
            .Where(t => Managed(t) && !wantedTargets.Contains(t["target"]?.GetValue<string>() ?? "")))
        {
            await api.SendAsync(HttpMethod.Delete, $"upstreams/{Escape(upstreamName)}/targets/{target["id"]!.GetValue<string>()}", null, ct);
            removed++;
        }
        return $"Kong at {api.Admin}: service {serviceName}, {routes.Count} routes, upstream {upstreamName} with {targets.Count} targets, "
            + $"{wantedPlugins.Count} plugins; {removed} stale entities removed.";
    }

    private static IEnumerable<Dictionary<string, object>> Plugins(Dictionary<string, object> entity) =>
        entity.TryGetValue("plugins", out var plugins) ? ((IEnumerable<object>)plugins).Cast<Dictionary<string, object>>() : [];

    private static bool Managed(JsonNode entity) =>
        entity["tags"] is JsonArray tags && tags.Any(t => t?.GetValue<string>() == ManagedTag);

    private static JsonNode Body(Dictionary<string, object> entity) => JsonSerializer.SerializeToNode(entity)!;

    private static JsonNode Without(Dictionary<string, object> entity, params string[] keys) =>
        Body(entity.Where(e => !keys.Contains(e.Key)).ToDictionary());

    private static string Escape(string segment) => Uri.EscapeDataString(segment);

    /// <summary>A stable UUID (version 5 layout, SHA-1 of the names) for one plugin of one scope of one service.</summary>
    public static string PluginId(string service, string scope, string plugin)
    {
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes($"agentry/{service}/{scope}/{plugin}"));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    /// <summary>Kong's Admin API: JSON in and out, a failure as one line naming the call and Kong's message.</summary>
    private sealed class AdminApi(HttpClient http, Uri admin)
    {
        public Uri Admin => admin;

        public async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct)
        {
            using var response = await CallAsync(method, path, body, ct);
            return response.StatusCode == HttpStatusCode.NoContent ? null : await response.Content.ReadFromJsonAsync<JsonNode>(ct);
        }

        public async Task<HttpStatusCode> SendStatusAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct)
        {
            using var response = await CallAsync(method, path, body, ct);
            return response.StatusCode;
        }

        /// <summary>Every entity of a list, following Kong's <c>next</c> links.</summary>
        public async Task<List<JsonNode>> ListAsync(string path, CancellationToken ct)
        {
            var all = new List<JsonNode>();
            for (string? next = path; next is not null;)
            {
                var page = await SendAsync(HttpMethod.Get, next, null, ct);
                all.AddRange(page?["data"]?.AsArray().OfType<JsonNode>() ?? []);
                next = page?["next"]?.GetValue<string>()?.TrimStart('/');
            }
            return all;
        }

        private async Task<HttpResponseMessage> CallAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, ct);
            }
            catch (HttpRequestException ex)
            {
                throw new OperationException($"cannot reach Kong's Admin API at {admin}: {ex.Message}", 1);
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new OperationException($"Kong's Admin API at {admin} did not answer {method} /{path} in time.", 1);
            }
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.NotModified)
            {
                return response;
            }
            var text = await response.Content.ReadAsStringAsync(ct);
            response.Dispose();
            var message = TryMessage(text) ?? text;
            throw new OperationException($"Kong refused {method} /{path}: {(int)response.StatusCode} {message}", 1);
        }

        private static string? TryMessage(string text)
        {
            try
            {
                return JsonNode.Parse(text)?["message"]?.GetValue<string>();
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
