using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// <c>schedule_slots_fired_total</c> per node. Meters are process-wide, but each app's meter factory hands out its own
/// <c>Agentry</c> meter, so a measurement's meter says which node made it.
/// </summary>
internal sealed class SlotsFiredPerNode : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<Meter, string> _nodes;
    private readonly ConcurrentDictionary<string, long> _counts = new();

    public SlotsFiredPerNode(params (string Name, AgentryApp App)[] nodes)
    {
        _nodes = nodes.ToDictionary(n => n.App.Services.GetRequiredService<IMeterFactory>().Create(ApiMetrics.MeterName), n => n.Name);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "schedule_slots_fired_total" && _nodes.ContainsKey(instrument.Meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => _counts.AddOrUpdate(_nodes[instrument.Meter], value, (_, sum) => sum + value));
        _listener.Start();
    }

    public long Total => _counts.Values.Sum();

    public override string ToString() => string.Join(", ", _counts.OrderBy(c => c.Key).Select(c => $"{c.Key}: {c.Value}"));

    public void Dispose() => _listener.Dispose();
}

/// <summary>Runs webhook agents without calling anything: every task succeeds with <c>{"ok":true}</c>.</summary>
public sealed class OkWebhookHandler : ITaskHandler
{
    public string Kind => AgentKinds.Webhook;

    public Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken) =>
        Task.FromResult<JsonElement?>(JsonDocument.Parse("""{"ok":true}""").RootElement.Clone());
}

internal static class ScheduleTesting
{
    /// <summary>Scans for due slots and due tasks often, so per-second schedules run promptly.</summary>
    public static readonly IReadOnlyDictionary<string, string?> FastRunner = new Dictionary<string, string?>
    {
        ["Agentry:Schedules:Interval"] = "00:00:00.100",
        ["Agentry:Queue:PollInterval"] = "00:00:00.100",
    };

    /// <summary>The last registration of a kind wins, so this replaces any webhook handler.</summary>
    public static void RunWebhooks(IServiceCollection services) => services.AddSingleton<ITaskHandler>(new OkWebhookHandler());

    public static async Task<Guid> WebhookAgentAsync(HttpClient client) =>
        (await (await client.PostJsonAsync("/api/v1/agents", new { name = "hook", kind = "webhook", webhook = new { url = "https://example.com/hook" } }))
            .ReadAsync<AgentResponse>(HttpStatusCode.Created)).Id;

    /// <summary>Every task the schedule created, through the task list's schedule filter.</summary>
    public static async Task<List<TaskResponse>> TasksAsync(HttpClient client, Guid scheduleId)
    {
        var seen = new List<TaskResponse>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetAsync($"/api/v1/tasks?scheduleId={scheduleId}&limit=200" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")))
                .ReadAsync<Page<TaskResponse>>();
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return seen;
    }
}
