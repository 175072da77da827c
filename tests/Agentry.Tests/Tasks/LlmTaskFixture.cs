using System.Collections.Concurrent;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Tools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Tasks;

/// <summary>
/// An app on SQLite for <c>llm</c> agent tasks, with three model providers: <c>local</c> runs the tiny GGUF model
/// in-process (<c>local/tiny</c>, real inference, 24 tokens a reply); <c>standin</c> is an OpenAI-compatible protocol
/// stand-in (<see cref="LlmStandIn"/>) for what the tiny model cannot do, calling tools and hanging; <c>down</c> is an
/// Ollama server that is not there. The tools are <see cref="TestAgentTools"/>, one real <see cref="AIFunction"/>.
/// </summary>
public sealed class LlmTaskFixture : IAsyncLifetime
{
    public const int ReplyTokens = 24;

    public AgentryApp App { get; private set; } = null!;

    public StandInServer StandIn { get; private set; } = null!;

    public TestAgentTools Tools { get; } = new();

    public ConcurrentQueue<string> Aborted { get; } = new();

    public async ValueTask InitializeAsync()
    {
        StandIn = await StandInServer.StartAsync(server =>
        {
            server.MapGet("/v1/models", () => Results.Text(LlmStandIn.Models, "application/json"));
            server.MapPost("/v1/chat/completions", context => LlmStandIn.CompleteAsync(context, Aborted));
        });
        var settings = TinyModelFixture.LlamaCppSettings(("local", ChatSettings.NewModelFile())).With(TaskQueueSettings.Fast).With(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:1:Name"] = "standin",
            ["Agentry:Llm:Providers:1:Kind"] = "openai",
            ["Agentry:Llm:Providers:1:Endpoints:0"] = new Uri(StandIn.BaseUri, "/v1").ToString(),
            ["Agentry:Llm:Providers:2:Name"] = "down",
            ["Agentry:Llm:Providers:2:Kind"] = "ollama",
            ["Agentry:Llm:Providers:2:Endpoints:0"] = $"http://127.0.0.1:{RedisProcess.FreePort()}",
            [$"{ConversationOptions.SectionName}:MaxReplyTokens"] = ReplyTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Agentry:Knowledge:IndexDirectory"] = TempFiles.Directory(),
        });
        App = AgentryApp.Sqlite(settings, services => services.AddSingleton<IAgentTools>(Tools));
        await App.AdminClientAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await StandIn.DisposeAsync();
    }
}

/// <summary>Tools for tests, registered in place of the installation's (which has none): <c>get_weather</c>, recording each call.</summary>
public sealed class TestAgentTools : IAgentTools
{
    public ConcurrentQueue<string> Calls { get; } = new();

    private AIFunction Weather => AIFunctionFactory.Create(
        (string city) =>
        {
            Calls.Enqueue(city);
            return $"sunny and 21 C in {city}";
        },
        "get_weather",
        "The weather now in a city.");

    public ValueTask<IReadOnlyList<AIFunction>> FindAsync(ToolCaller caller, IReadOnlyList<string> names, CancellationToken ct) =>
        ValueTask.FromResult<IReadOnlyList<AIFunction>>(names.Contains("get_weather") ? [Weather] : []);
}

/// <summary>
/// The protocol stand-in's chat completions, streamed as OpenAI documents them (<c>chat.completion.chunk</c> events, tool
/// calls as <c>delta.tool_calls</c> fragments ending with <c>finish_reason: "tool_calls"</c>, usage in a last chunk when
/// <c>stream_options.include_usage</c> asks). Models: <c>tools</c> calls <c>get_weather</c> for Paris, then answers with
/// what the tool message said; <c>loop</c> calls it for Oslo every time; <c>hang</c> writes one delta and then waits
/// until the client goes away (recorded in <c>aborted</c>). <c>script</c> replies with the tool calls its last user message
/// scripts (<c>{"calls": [{"name": …, "arguments": {…}}]}</c>: a model whose reply a prompt injection wrote), and once
/// tool messages came back, with their contents (<c>Done: …</c>). <c>cite</c> answers from the knowledge sources its prompt
/// holds: <c>According to [1]: </c> and the text of source 1, or <c>No sources.</c>
/// </summary>
internal static class LlmStandIn
{
    public const string Models = """
        {"object":"list","data":[
          {"id":"tools","object":"model","created":1746000000,"owned_by":"standin"},
          {"id":"loop","object":"model","created":1746000000,"owned_by":"standin"},
          {"id":"hang","object":"model","created":1746000000,"owned_by":"standin"},
          {"id":"script","object":"model","created":1746000000,"owned_by":"standin"},
          {"id":"cite","object":"model","created":1746000000,"owned_by":"standin"}
        ]}
        """;

    public static async Task CompleteAsync(HttpContext context, ConcurrentQueue<string> aborted)
    {
        var request = (await JsonDocument.ParseAsync(context.Request.Body)).RootElement;
        var model = request.GetProperty("model").GetString()!;
        var includeUsage = request.TryGetProperty("stream_options", out var options) && options.TryGetProperty("include_usage", out var include) && include.GetBoolean();
        var toolMessage = request.GetProperty("messages").EnumerateArray().LastOrDefault(m => m.GetProperty("role").GetString() == "tool");
        IEnumerable<string> chunks = model switch
        {
            "tools" when toolMessage.ValueKind == JsonValueKind.Object =>
                Text(model, ["Forecast: ", Content(toolMessage.GetProperty("content"))], includeUsage, 30, 7),
            "tools" => ToolCall(model, "call_paris", "Paris", includeUsage, 20, 5),
            "loop" => ToolCall(model, $"call_oslo_{Guid.NewGuid():N}", "Oslo", includeUsage, 20, 5),
            "script" when Last(request, "assistant") > Last(request, "user") => Text(model, ["Done: ", string.Join(" | ", ToolContents(request))], includeUsage, 30, 7),
            "script" => Scripted(model, request, includeUsage),
            "cite" => Text(model, FirstSource(request) is { } source ? ["According to [1]: ", source] : ["No sources."], includeUsage, 40, 9),
            _ => [Chunk(model, """{"role":"assistant","content":"Thinking"}""", null)],
        };
        await StandInServer.StreamAsync(context.Response, "text/event-stream", chunks.Select(data => $"data: {data}\n\n"));
        if (model == "hang")
        {
            try
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                aborted.Enqueue(model);
            }
            return;
        }
        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    private static int Last(JsonElement request, string role) =>
        request.GetProperty("messages").EnumerateArray().Select((m, i) => (m, i)).LastOrDefault(x => x.m.GetProperty("role").GetString() == role, (default, -1)).Item2;

    /// <summary>The contents of the tool messages after the last assistant message with tool calls.</summary>
    private static IEnumerable<string> ToolContents(JsonElement request) =>
        request.GetProperty("messages").EnumerateArray().Skip(Last(request, "assistant") + 1)
            .Where(m => m.GetProperty("role").GetString() == "tool").Select(m => Content(m.GetProperty("content")));

    /// <summary>The calls the last user message scripts, one <c>tool_calls</c> entry each, ids <c>call_0</c>, <c>call_1</c>, ….</summary>
    private static IEnumerable<string> Scripted(string model, JsonElement request, bool includeUsage)
    {
        var user = request.GetProperty("messages").EnumerateArray().Last(m => m.GetProperty("role").GetString() == "user");
        var calls = JsonDocument.Parse(Content(user.GetProperty("content"))).RootElement.GetProperty("calls").EnumerateArray().ToList();
        return calls.SelectMany((call, i) =>
            {
                var head = i == 0 ? "\"role\":\"assistant\",\"content\":null," : "";
                var name = JsonSerializer.Serialize(call.GetProperty("name").GetString());
                var arguments = JsonSerializer.Serialize(call.GetProperty("arguments").GetRawText());
                return new[]
                {
                    Chunk(model, "{" + head + $$$"""
                        "tool_calls":[{"index":{{{i}}},"id":"call_{{{i}}}","type":"function","function":{"name":{{{name}}},"arguments":""}}]}
                        """, null),
                    Chunk(model, $$$"""{"tool_calls":[{"index":{{{i}}},"function":{"arguments":{{{arguments}}}}}]}""", null),
                };
            })
            .Append(Chunk(model, "{}", "tool_calls"))
            .Concat(includeUsage ? [Usage(model, 20, 5)] : []);
    }

    /// <summary>The text of source [1] in a system message that numbers knowledge sources (its lines up to source [2]), on one line.</summary>
    private static string? FirstSource(JsonElement request) =>
        request.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("role").GetString() == "system")
            .Select(m => Content(m.GetProperty("content")).Split('\n'))
            .Select(lines => Array.FindIndex(lines, l => l.StartsWith("[1] ", StringComparison.Ordinal)) is var at and >= 0
                ? string.Join(" ", lines.Skip(at + 1).TakeWhile(l => !l.StartsWith("[2] ", StringComparison.Ordinal)).Where(l => l.Length > 0))
                : null)
            .FirstOrDefault(text => text is not null);

    /// <summary>Message content is a string, or an array of text parts in the newer form.</summary>
    public static string Content(JsonElement content) => content.ValueKind == JsonValueKind.String
        ? content.GetString()!
        : string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString()));

    private static IEnumerable<string> Text(string model, string[] pieces, bool includeUsage, int prompt, int completion) =>
        pieces.Select((piece, i) => Chunk(model, i == 0
                ? $$"""{"role":"assistant","content":{{JsonSerializer.Serialize(piece)}}}"""
                : $$"""{"content":{{JsonSerializer.Serialize(piece)}}}""", null))
            .Append(Chunk(model, "{}", "stop"))
            .Concat(includeUsage ? [Usage(model, prompt, completion)] : []);

    private static IEnumerable<string> ToolCall(string model, string id, string city, bool includeUsage, int prompt, int completion) =>
        new[]
        {
            Chunk(model, $$$"""{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"{{{id}}}","type":"function","function":{"name":"get_weather","arguments":""}}]}""", null),
            Chunk(model, """{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}""", null),
            Chunk(model, $$$"""{"tool_calls":[{"index":0,"function":{"arguments":"\"{{{city}}}\"}"}}]}""", null),
            Chunk(model, "{}", "tool_calls"),
        }.Concat(includeUsage ? [Usage(model, prompt, completion)] : []);

    private static string Chunk(string model, string delta, string? finish) =>
        $$"""{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1746000000,"model":"{{model}}","system_fingerprint":null,"choices":[{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":{{(finish is null ? "null" : $"\"{finish}\"")}}}]}""";

    private static string Usage(string model, int prompt, int completion) =>
        $$$"""{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1746000000,"model":"{{{model}}}","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":{{{prompt}}},"completion_tokens":{{{completion}}},"total_tokens":{{{prompt + completion}}}}}""";
}
