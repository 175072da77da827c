using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Agentry.Models;
using Agentry.Tests.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;

// Usage:
//   Agentry.Bench write-model PATH
//   Agentry.Bench measure --url URL --email E --password P --model-path PATH [--rounds N] [--warmup SECONDS] [--report FILE]
// `measure` times one reply per round along three paths, interleaved so that drift of the machine affects all alike:
//   direct        the llama.cpp chat client called in this process (the baseline)
//   conversation  POST /api/v1/conversations/{id}/messages with Accept: text/event-stream (a new conversation per round)
//   openai        POST /v1/chat/completions with stream: true (and include_usage)
// Each path sends the same single user message to the same model with the same output token limit.
return args switch
{
    ["write-model", var path] => WriteModel(path),
    ["measure", .. var rest] => await ChatBench.MeasureAsync(Options.Parse(rest)),
    _ => Usage(),
};

static int WriteModel(string path)
{
    TinyGguf.Write(path);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Agentry.Bench write-model PATH | measure --url URL --email E --password P --model-path PATH [--rounds N] [--warmup SECONDS] [--report FILE]");
    return 2;
}

internal sealed record Options(Uri Url, string Email, string Password, string ModelPath, int Rounds, TimeSpan Warmup, string? Report)
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
        return new Options(new Uri(Required("url")), Required("email"), Required("password"), Required("model-path"),
            Number("rounds", 30), TimeSpan.FromSeconds(Number("warmup", 20)), values.GetValueOrDefault("report"));
    }
}

/// <summary>One timed reply: when the first and the last piece of text arrived, and how many tokens it had.</summary>
internal readonly record struct Sample(double FirstTokenMs, double LastTokenMs, int Tokens)
{
    /// <summary>Tokens per second while generating: the tokens after the first over the time they took to arrive.</summary>
    public double TokensPerSecond => Tokens > 1 && LastTokenMs > FirstTokenMs ? (Tokens - 1) / ((LastTokenMs - FirstTokenMs) / 1000) : double.NaN;
}

internal static class ChatBench
{
    private const string Message = "hello world the quick brown fox jumps over the lazy dog";

    public static async Task<int> MeasureAsync(Options options)
    {
        using var http = new HttpClient { BaseAddress = options.Url, Timeout = TimeSpan.FromMinutes(2) };
        var token = await TokenAsync(http, options);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var workspace = await DefaultWorkspaceAsync(http);
        http.DefaultRequestHeaders.Add("Agentry-Workspace", workspace);

        // The same file, provider settings and thread count as the service's provider "local".
        var provider = new LlamaCppModelProvider(
            new ModelProviderOptions { Name = "local", Kind = ModelProviderOptions.LlamaCpp, Path = options.ModelPath, Threads = 1 },
            new LlamaCppModels(NullLogger<LlamaCppModels>.Instance));
        var model = (await provider.ListAsync(CancellationToken.None))[0];
        using var direct = await provider.ChatClientAsync(model, CancellationToken.None);

        // The conversation endpoint chooses the reply's length from the model's window; the other paths ask for as many.
        var first = await ConversationAsync(http, model.Id);
        var maxTokens = first.Tokens;
        Console.Error.WriteLine($"chat-bench: model {model.Id}, {maxTokens} output tokens per reply, {options.Warmup.TotalSeconds:0} s of warm-up, {options.Rounds} rounds");

        var paths = new (string Name, Func<Task<Sample>> Run)[]
        {
            ("direct", () => DirectAsync(direct, maxTokens)),
            ("conversation", () => ConversationAsync(http, model.Id)),
            ("openai", () => OpenAiAsync(http, model.Id, maxTokens)),
        };
        // A node in service has long been through tiered compilation of these paths; so has the direct client after this.
        var warmup = Stopwatch.StartNew();
        for (var round = 0; warmup.Elapsed < options.Warmup; round++)
        {
            await RoundAsync(paths, round, maxTokens, (_, _) => { });
        }
        var samples = paths.ToDictionary(p => p.Name, _ => new List<Sample>());
        for (var round = 0; round < options.Rounds; round++)
        {
            await RoundAsync(paths, round, maxTokens, (name, sample) => samples[name].Add(sample));
        }
        var report = Report(samples, maxTokens, options.Rounds);
        Console.WriteLine(report);
        if (options.Report is { } file)
        {
            await File.WriteAllTextAsync(file, report);
        }
        return 0;
    }

    /// <summary>One reply along each path, the order rotated by round so that no path always runs right after another.</summary>
    private static async Task RoundAsync((string Name, Func<Task<Sample>> Run)[] paths, int round, int maxTokens, Action<string, Sample> record)
    {
        for (var i = 0; i < paths.Length; i++)
        {
            var (name, run) = paths[(round + i) % paths.Length];
            var sample = await run();
            if (sample.Tokens != maxTokens)
            {
                throw new InvalidOperationException($"{name}: {sample.Tokens} tokens, expected {maxTokens}");
            }
            record(name, sample);
        }
    }

    private static async Task<Sample> DirectAsync(IChatClient client, int maxTokens)
    {
        var clock = Stopwatch.StartNew();
        double first = double.NaN, last = double.NaN;
        var tokens = 0;
        UsageDetails? usage = null;
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Message)], new ChatOptions { MaxOutputTokens = maxTokens }))
        {
            usage = update.Contents.OfType<UsageContent>().LastOrDefault()?.Details ?? usage;
            if (update.Text.Length > 0)
            {
                last = clock.Elapsed.TotalMilliseconds;
                first = double.IsNaN(first) ? last : first;
                tokens++;
            }
        }
        return new Sample(first, last, (int?)usage?.OutputTokenCount ?? tokens);
    }

    private static async Task<Sample> ConversationAsync(HttpClient http, string model)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/conversations", new { model });
        var id = (await ReadJsonAsync(created))["id"]!.GetValue<string>();

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/conversations/{id}/messages")
        {
            Content = JsonContent.Create(new { content = Message }),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return await TimeStreamAsync(http, request, "reply.completed", item => item.EventType switch
        {
            "reply.delta" => new Reading(Text: true, Tokens: null),
            "reply.completed" => new Reading(Text: false, JsonNode.Parse(item.Data)!["data"]!["outputTokens"]!.GetValue<int>()),
            "reply.failed" or "reply.cancelled" => throw new InvalidOperationException($"conversation reply ended {item.EventType}: {item.Data}"),
            _ => default,
        });
    }

    private static async Task<Sample> OpenAiAsync(HttpClient http, string model, int maxTokens)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model,
                messages = new[] { new { role = "user", content = Message } },
                stream = true,
                max_tokens = maxTokens,
                stream_options = new { include_usage = true },
            }),
        };
        return await TimeStreamAsync(http, request, "a usage chunk", item =>
        {
            if (item.Data == "[DONE]")
            {
                return default;
            }
            var chunk = JsonNode.Parse(item.Data)!;
            var text = chunk["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["delta"]?["content"]?.GetValue<string>() is { Length: > 0 };
            return new Reading(text, chunk["usage"] is JsonObject usage ? usage["completion_tokens"]!.GetValue<int>() : null);
        });
    }

    /// <summary>What one Server-Sent Event says: whether it carries text, and the reply's token count if it tells it.</summary>
    private readonly record struct Reading(bool Text, int? Tokens);

    /// <summary>Sends <paramref name="request"/> and times the text events of its stream, as <paramref name="read"/> tells them apart.</summary>
    private static async Task<Sample> TimeStreamAsync(HttpClient http, HttpRequestMessage request, string countEvent, Func<SseItem<string>, Reading> read)
    {
        var clock = Stopwatch.StartNew();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await EnsureSuccessAsync(response);
        double first = double.NaN, last = double.NaN;
        int? tokens = null;
        await using var body = await response.Content.ReadAsStreamAsync();
        await foreach (var item in SseParser.Create(body).EnumerateAsync())
        {
            var reading = read(item);
            if (reading.Text)
            {
                last = clock.Elapsed.TotalMilliseconds;
                first = double.IsNaN(first) ? last : first;
            }
            tokens = reading.Tokens ?? tokens;
        }
        return new Sample(first, last, tokens ?? throw new InvalidOperationException($"the stream ended without {countEvent}"));
    }

    private static async Task<string> TokenAsync(HttpClient http, Options options)
    {
        using var response = await http.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = options.Email, ["password"] = options.Password,
        }));
        return (await ReadJsonAsync(response))["access_token"]!.GetValue<string>();
    }

    private static async Task<string> DefaultWorkspaceAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/api/v1/workspaces?limit=1");
        return (await ReadJsonAsync(response))["items"]![0]!["id"]!.GetValue<string>();
    }

    private static async Task<JsonNode> ReadJsonAsync(HttpResponseMessage response)
    {
        await EnsureSuccessAsync(response);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static string Report(Dictionary<string, List<Sample>> samples, int tokens, int rounds)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
            return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        var ttft = samples.ToDictionary(s => s.Key, s => Median(s.Value.Select(v => v.FirstTokenMs)));
        var rate = samples.ToDictionary(s => s.Key, s => Median(s.Value.Select(v => v.TokensPerSecond)));
        var text = new StringBuilder("""
            | path | time to first token, ms (median) | added vs direct, ms | tokens/s (median) | ratio vs direct |
            |---|---:|---:|---:|---:|

            """);
        foreach (var name in samples.Keys)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"| {name} | {ttft[name]:0.00} | {ttft[name] - ttft["direct"]:+0.00;-0.00;0.00} | {rate[name]:0} | {rate[name] / rate["direct"]:0.00} |\n");
        }
        text.Append(CultureInfo.InvariantCulture, $"\n{rounds} rounds per path, {tokens} output tokens per reply; goal: added time to first token < 5 ms, tokens/s ≥ 0.95 of direct.\n");
        foreach (var name in samples.Keys.Where(n => n != "direct"))
        {
            var added = ttft[name] - ttft["direct"];
            var ratio = rate[name] / rate["direct"];
            text.Append(CultureInfo.InvariantCulture,
                $"- {name}: added latency {added:0.00} ms — {(added < 5 ? "PASS" : "FAIL")}; throughput {ratio:0.00} of direct — {(ratio >= 0.95 ? "PASS" : "FAIL")}\n");
        }
        return text.ToString();
    }
}
