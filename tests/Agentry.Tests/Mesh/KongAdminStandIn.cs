using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Agentry.Tests.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Agentry.Tests.Mesh;

/// <summary>
/// A recorded-contract listener for Kong's Admin API (no Kong can be installed on these machines): the endpoints a sync
/// uses, as Kong documents them. <c>GET /</c> reports the database (<c>off</c>: DB-less); <c>PUT</c> on
/// <c>/upstreams/{name}</c>, <c>/upstreams/{name}/targets/{target}</c>, <c>/services/{name}</c>,
/// <c>/services/{name}/routes/{name}</c>, <c>/services/{name}/plugins/{uuid}</c> and <c>/routes/{name}/plugins/{uuid}</c>
/// upsert (an entity keeps its id); lists answer <c>{"data": [...], "next": …}</c> a few at a time; <c>DELETE</c> answers
/// 204; DB-less <c>POST /config?check_hash=1</c> answers 201, or 304 for the configuration it already runs. It keeps
/// the entities, so a test can read what a sync left behind.
/// </summary>
public sealed class KongAdminStandIn
{
    private const int PageSize = 3;

    private readonly Lock _gate = new();

    public KongAdminStandIn(string database) => Database = database;

    public string Database { get; }

    public Dictionary<string, JsonObject> Upstreams { get; } = [];

    /// <summary>Targets by upstream name, then by <c>host:port</c>.</summary>
    public Dictionary<string, Dictionary<string, JsonObject>> Targets { get; } = [];

    public Dictionary<string, JsonObject> Services { get; } = [];

    public Dictionary<string, JsonObject> Routes { get; } = [];

    public Dictionary<string, JsonObject> Plugins { get; } = [];

    public string? LoadedConfig { get; private set; }

    /// <summary>When set, <c>PUT /services/…</c> is refused with this schema violation.</summary>
    public string? RefuseServices { get; set; }

    /// <summary>Everything the stand-in holds, as one JSON text (for comparing two moments).</summary>
    public string Snapshot()
    {
        lock (_gate)
        {
            return new JsonObject
            {
                ["upstreams"] = Clone(Upstreams), ["targets"] = new JsonObject(Targets.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)Clone(t.Value)))),
                ["services"] = Clone(Services), ["routes"] = Clone(Routes), ["plugins"] = Clone(Plugins), ["config"] = LoadedConfig,
            }.ToJsonString();
        }
    }

    /// <summary>The Admin API's routes, for <see cref="StandInServer.StartAsync"/>.</summary>
    public void Map(WebApplication app)
    {
        app.MapGet("/", () => Results.Json(new JsonObject { ["version"] = "3.9.1", ["configuration"] = new JsonObject { ["database"] = Database } }));
        app.MapPost("/config", async (HttpRequest request) =>
        {
            if (Database != "off")
            {
                return Results.Json(new JsonObject { ["message"] = "this endpoint is only available when Kong is configured to not use a database" }, statusCode: 400);
            }
            var config = (await request.ReadFromJsonAsync<JsonObject>())?["config"]?.GetValue<string>();
            if (config is null)
            {
                return Results.Json(new JsonObject { ["message"] = "expected a declarative configuration" }, statusCode: 400);
            }
            lock (_gate)
            {
                if (request.Query["check_hash"] == "1" && Hash(config) == Hash(LoadedConfig ?? ""))
                {
                    return Results.StatusCode(304);
                }
                LoadedConfig = config;
            }
            return Results.Json(new JsonObject(), statusCode: 201);
        });

        app.MapPut("/upstreams/{name}", async (string name, HttpRequest request) => Upsert(Upstreams, name, await BodyAsync(request), null));
        app.MapPut("/upstreams/{name}/targets/{target}", async (string name, string target, HttpRequest request) =>
        {
            var body = await BodyAsync(request);
            lock (_gate)
            {
                if (!Upstreams.TryGetValue(name, out var upstream))
                {
                    return NotFound();
                }
                body["upstream"] = new JsonObject { ["id"] = upstream["id"]!.GetValue<string>() };
                return Upsert(Targets.TryGetValue(name, out var targets) ? targets : Targets[name] = [], target, body, null);
            }
        });
        app.MapGet("/upstreams/{name}/targets", (string name, HttpRequest request) =>
            Page(request, Targets.GetValueOrDefault(name)?.Values ?? Enumerable.Empty<JsonObject>()));
        app.MapDelete("/upstreams/{name}/targets/{target}", (string name, string target) =>
        {
            lock (_gate)
            {
                var targets = Targets.GetValueOrDefault(name);
                var key = targets?.FirstOrDefault(t => t.Key == target || t.Value["id"]!.GetValue<string>() == target).Key;
                return key is not null && targets!.Remove(key) ? Results.NoContent() : NotFound();
            }
        });

        app.MapPut("/services/{name}", async (string name, HttpRequest request) =>
            RefuseServices is { } violation
                ? Results.Json(new JsonObject { ["message"] = $"schema violation ({violation})", ["name"] = "schema violation", ["code"] = 2 }, statusCode: 400)
                : Upsert(Services, name, await BodyAsync(request), null));
        app.MapPut("/services/{service}/routes/{name}", async (string service, string name, HttpRequest request) =>
        {
            var body = await BodyAsync(request);
            lock (_gate)
            {
                if (!Services.TryGetValue(service, out var owner))
                {
                    return NotFound();
                }
                body["service"] = new JsonObject { ["id"] = owner["id"]!.GetValue<string>() };
                return Upsert(Routes, name, body, null);
            }
        });
        app.MapGet("/services/{service}/routes", (string service, HttpRequest request) =>
        {
            var id = Services.GetValueOrDefault(service)?["id"]?.GetValue<string>();
            return Page(request, Routes.Values.Where(r => r["service"]?["id"]?.GetValue<string>() == id));
        });
        app.MapDelete("/routes/{id}", (string id) =>
        {
            lock (_gate)
            {
                var name = Routes.FirstOrDefault(r => r.Value["id"]!.GetValue<string>() == id).Key;
                if (name is null)
                {
                    return NotFound();
                }
                Routes.Remove(name);
                foreach (var plugin in Plugins.Where(p => p.Value["route"]?["id"]?.GetValue<string>() == id).Select(p => p.Key).ToList())
                {
                    Plugins.Remove(plugin);
                }
                return Results.NoContent();
            }
        });

        app.MapPut("/services/{service}/plugins/{id}", async (string service, string id, HttpRequest request) =>
            PutPlugin(id, "service", Services.GetValueOrDefault(service), await BodyAsync(request)));
        app.MapPut("/routes/{route}/plugins/{id}", async (string route, string id, HttpRequest request) =>
            PutPlugin(id, "route", Routes.GetValueOrDefault(route), await BodyAsync(request)));
        app.MapGet("/plugins", (HttpRequest request) =>
            Page(request, Plugins.Values.Where(p => request.Query["tags"] is not { Count: > 0 } tags || Tagged(p, tags.ToString()))));
        app.MapDelete("/plugins/{id}", (string id) =>
        {
            lock (_gate)
            {
                return Plugins.Remove(id) ? Results.NoContent() : NotFound();
            }
        });
    }

    private IResult PutPlugin(string id, string scope, JsonObject? owner, JsonObject body)
    {
        if (!Guid.TryParse(id, out _))
        {
            return Results.Json(new JsonObject { ["message"] = "schema violation (id: expected a valid UUID)" }, statusCode: 400);
        }
        if (owner is null)
        {
            return NotFound();
        }
        body[scope] = new JsonObject { ["id"] = owner["id"]!.GetValue<string>() };
        lock (_gate)
        {
            return Upsert(Plugins, id, body, id);
        }
    }

    /// <summary>Inserts or replaces the entity named <paramref name="key"/>, keeping its id (Kong's PUT).</summary>
    private IResult Upsert(Dictionary<string, JsonObject> entities, string key, JsonObject body, string? id)
    {
        lock (_gate)
        {
            body["id"] = entities.TryGetValue(key, out var existing) ? existing["id"]!.GetValue<string>() : id ?? Guid.NewGuid().ToString();
            entities[key] = body;
            return Results.Json(body, statusCode: 200);
        }
    }

    /// <summary>A page of a list, with Kong's <c>offset</c> and <c>next</c>.</summary>
    private IResult Page(HttpRequest request, IEnumerable<JsonObject> all)
    {
        lock (_gate)
        {
            var items = all.OrderBy(e => e["id"]!.GetValue<string>(), StringComparer.Ordinal).ToList();
            var offset = int.TryParse(request.Query["offset"], out var o) ? o : 0;
            var page = items.Skip(offset).Take(PageSize).Select(e => (JsonNode?)e.DeepClone()).ToArray();
            var more = offset + PageSize < items.Count;
            var query = string.Join("", request.Query.Where(q => q.Key != "offset").Select(q => $"{q.Key}={q.Value}&"));
            return Results.Json(new JsonObject
            {
                ["data"] = new JsonArray(page),
                ["next"] = more ? $"{request.Path}?{query}offset={offset + PageSize}" : null,
                ["offset"] = more ? (offset + PageSize).ToString(System.Globalization.CultureInfo.InvariantCulture) : null,
            });
        }
    }

    private static async Task<JsonObject> BodyAsync(HttpRequest request) => await request.ReadFromJsonAsync<JsonObject>() ?? [];

    private static bool Tagged(JsonObject entity, string tag) => entity["tags"] is JsonArray tags && tags.Any(t => t?.GetValue<string>() == tag);

    private static IResult NotFound() => Results.Json(new JsonObject { ["message"] = "Not found" }, statusCode: 404);

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private static JsonObject Clone(Dictionary<string, JsonObject> entities) =>
        new(entities.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => KeyValuePair.Create(e.Key, (JsonNode?)e.Value.DeepClone())));
}
