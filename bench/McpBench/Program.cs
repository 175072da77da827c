using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

// Usage:
//   Agentry.McpBench --url URL --token TOKEN --workspace ID --node NODE --server-entry PATH [--server NAME] [--rounds N] [--calls N]
//                    [--warmup SECONDS] [--concurrency N] [--seconds S] [--report FILE]
// Times the server-everything `echo` tool along three paths, one call at a time, interleaved round by round:
//   direct  the SDK's stdio client talking to its own server-everything child in this process (the baseline)
//   api     POST /api/v1/tools/{server}/echo/call
//   mcp     tools/call of {server}__echo on Agentry's /mcp, with the SDK's Streamable HTTP client
// then, per path, calls/s with N concurrent callers for S seconds.
var options = Options.Parse(args);
return await McpBench.RunAsync(options);

internal sealed record Options(
    Uri Url, string Token, string Workspace, string Node, string ServerEntry, string Server, int Rounds, int Calls, TimeSpan Warmup,
    int Concurrency, TimeSpan Throughput, string? Report)
{
    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i].TrimStart('-')] = args[i + 1];
        }
        string Required(string key) => values.TryGetValue(key, out var v) ? v : throw new ArgumentException($"--{key} is required");
        int Number(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new Options(new Uri(Required("url")), Required("token"), Required("workspace"), Required("node"), Required("server-entry"),
            values.GetValueOrDefault("server") ?? "everything", Number("rounds", 20), Number("calls", 50), TimeSpan.FromSeconds(Number("warmup", 5)),
            Number("concurrency", 8), TimeSpan.FromSeconds(Number("seconds", 5)), values.GetValueOrDefault("report"));
    }
}

internal static class McpBench
{
    private const string Message = "hello from the MCP benchmark";

    public static async Task<int> RunAsync(Options options)
    {
        using var http = new HttpClient { BaseAddress = options.Url, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.Token);
        http.DefaultRequestHeaders.Add("Agentry-Workspace", options.Workspace);

        await using var direct = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "direct", Command = options.Node, Arguments = [options.ServerEntry, "stdio"],
        }));
        await using var mcp = await McpClient.CreateAsync(new HttpClientTransport(
            new HttpClientTransportOptions { Endpoint = new Uri(options.Url, "/mcp"), TransportMode = HttpTransportMode.StreamableHttp }, http));
        var bridged = $"{options.Server}__echo";
        if ((await mcp.ListToolsAsync()).All(t => t.Name != bridged))
        {
            throw new InvalidOperationException($"/mcp does not list {bridged}: is the server registered and enabled in this workspace?");
        }

        var paths = new (string Name, Func<Task> Call)[]
        {
            ("direct", () => CheckAsync("direct", direct.CallToolAsync("echo", new Dictionary<string, object?> { ["message"] = Message }))),
            ("api", () => ApiAsync(http, options.Server)),
            ("mcp", () => CheckAsync("mcp", mcp.CallToolAsync(bridged, new Dictionary<string, object?> { ["message"] = Message }))),
        };
        Console.Error.WriteLine($"mcp-bench: {options.Warmup.TotalSeconds:0} s of warm-up, {options.Rounds} rounds of {options.Calls} calls per path");
        var warmup = Stopwatch.StartNew();
        for (var round = 0; warmup.Elapsed < options.Warmup; round++)
        {
            await RoundAsync(paths, round, options.Calls, (_, _) => { });
        }
        var samples = paths.ToDictionary(p => p.Name, _ => new List<double>());
        for (var round = 0; round < options.Rounds; round++)
        {
            await RoundAsync(paths, round, options.Calls, (name, ms) => samples[name].Add(ms));
        }
        var throughput = new Dictionary<string, double>();
        foreach (var (name, call) in paths)
        {
            throughput[name] = await ThroughputAsync(call, options.Concurrency, options.Throughput);
        }
        var report = Report(samples, throughput, options);
        Console.WriteLine(report);
        if (options.Report is { } file)
        {
            await File.WriteAllTextAsync(file, report);
        }
        return 0;
    }

    /// <summary>A batch of calls along each path, the order rotated by round so that no path always runs right after another.</summary>
    private static async Task RoundAsync((string Name, Func<Task> Call)[] paths, int round, int calls, Action<string, double> record)
    {
        for (var i = 0; i < paths.Length; i++)
        {
            var (name, call) = paths[(round + i) % paths.Length];
            for (var c = 0; c < calls; c++)
            {
                var started = Stopwatch.GetTimestamp();
                await call();
                record(name, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
    }

    private static async Task<double> ThroughputAsync(Func<Task> call, int concurrency, TimeSpan duration)
    {
        var clock = Stopwatch.StartNew();
        var counts = new long[concurrency];
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
        {
            while (clock.Elapsed < duration)
            {
                await call();
                counts[worker]++;
            }
        }));
        return counts.Sum() / clock.Elapsed.TotalSeconds;
    }

    private static async Task CheckAsync(string path, ValueTask<CallToolResult> call)
    {
        var result = await call;
        var text = string.Join(" ", result.Content.OfType<TextContentBlock>().Select(c => c.Text));
        if (result.IsError == true || !text.Contains(Message, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{path}: unexpected echo result: {text}");
        }
    }

    private static async Task ApiAsync(HttpClient http, string server)
    {
        using var response = await http.PostAsJsonAsync($"/api/v1/tools/{server}/echo/call", new { arguments = new { message = Message } });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode || JsonNode.Parse(body)?["isError"]?.GetValue<bool>() == true || !body.Contains(Message, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"api: {(int)response.StatusCode} {body}");
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        var rank = p * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
    }

    private static string Report(Dictionary<string, List<double>> samples, Dictionary<string, double> throughput, Options options)
    {
        var median = samples.ToDictionary(s => s.Key, s => Percentile(s.Value, 0.5));
        var text = new StringBuilder($"""
            | path | median, ms | p99, ms | added vs direct (median), ms | calls/s, 1 caller | calls/s, {options.Concurrency} callers |
            |---|---:|---:|---:|---:|---:|

            """);
        foreach (var (name, values) in samples)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"| {name} | {median[name]:0.000} | {Percentile(values, 0.99):0.000} | {median[name] - median["direct"]:+0.000;-0.000;0.000} | {1000 / values.Average():0} | {throughput[name]:0} |\n");
        }
        text.Append(CultureInfo.InvariantCulture,
            $"\n{options.Rounds} rounds of {options.Calls} sequential calls per path ({options.Rounds * options.Calls} samples each), interleaved; {options.Throughput.TotalSeconds:0} s per path with {options.Concurrency} concurrent callers. Goal: added median latency < 2 ms.\n");
        foreach (var name in samples.Keys.Where(n => n != "direct"))
        {
            var added = median[name] - median["direct"];
            text.Append(CultureInfo.InvariantCulture, $"- {name}: added median latency {added:0.000} ms — {(added < 2 ? "PASS" : "FAIL")}\n");
        }
        return text.ToString();
    }
}
