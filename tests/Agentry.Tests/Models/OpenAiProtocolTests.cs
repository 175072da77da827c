using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Models;

/// <summary>
/// Protocol tests of the OpenAI-compatible provider against a stand-in that follows the OpenAI API (<c>GET /v1/models</c>,
/// <c>POST /v1/chat/completions</c> whole and as Server-Sent Events), with vLLM's <c>max_model_len</c>. The end-to-end test
/// against Agentry's own <c>/v1</c> endpoint comes with that endpoint.
/// </summary>
public sealed class OpenAiProtocolTests : ProviderProtocolTests
{
    private const string Key = "sk-test-0123456789";

    protected override void MapRoutes(WebApplication server)
    {
        server.MapGet("/v1/models", () => Results.Text(Models, "application/json"));
        server.MapPost("/v1/chat/completions", CompleteAsync);
    }

    protected override Dictionary<string, string?> Provider(Uri server) =>
        new() { ["Name"] = "vllm", ["Kind"] = "openai", ["Endpoints:0"] = new Uri(server, "/v1").ToString(), ["ApiKey"] = Key };

    [Fact]
    public async Task Protocol_against_a_stand_in_lists_models_with_the_window_the_server_reports()
    {
        var listing = Assert.Single(await Catalog.ListAsync(TestContext.Current.CancellationToken));

        Assert.True(listing.IsAvailable, listing.Error);
        Assert.Equal(
            [
                new ModelResponse("vllm/Qwen/Qwen2.5-0.5B-Instruct", "vllm", "Qwen/Qwen2.5-0.5B-Instruct", 32768, null),
                new ModelResponse("vllm/plain", "vllm", "plain", null, null),
            ],
            listing.Models);
        Assert.Equal($"Bearer {Key}", Server.Single("GET", "/v1/models").Headers["Authorization"]);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_streams_chat_completions_as_server_sent_events()
    {
        var model = await ResolveAsync("vllm/Qwen/Qwen2.5-0.5B-Instruct");
        List<ChatMessage> messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Say hello")];

        var updates = await model.Client.GetStreamingResponseAsync(messages, new ChatOptions { MaxOutputTokens = 50 }, TestContext.Current.CancellationToken).ToListAsync();

        Assert.Equal(["Hel", "lo", " there"], updates.Select(u => u.Text).Where(t => t.Length > 0));
        Assert.Contains(updates, u => u.FinishReason == ChatFinishReason.Stop);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
        Assert.Equal((9, 3), (usage.InputTokenCount, usage.OutputTokenCount));

        var sent = Server.Single("POST", "/v1/chat/completions");
        Assert.Equal($"Bearer {Key}", sent.Headers["Authorization"]);
        var body = sent.Body!.Value;
        Assert.Equal("Qwen/Qwen2.5-0.5B-Instruct", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("stream").GetBoolean());
        Assert.Equal([("system", "Be brief."), ("user", "Say hello")], Messages(body, Text));
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_answers_whole_when_not_streaming()
    {
        var body = await AnswerWholeAsync("vllm/plain", "/v1/chat/completions", (9, 3));

        Assert.Equal("plain", body.GetProperty("model").GetString());
        Assert.False(body.TryGetProperty("stream", out var stream) && stream.GetBoolean());
    }

    /// <summary>Message content is a string, or an array of parts in the newer form.</summary>
    private static string? Text(JsonElement content) => content.ValueKind == JsonValueKind.String
        ? content.GetString()
        : string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString()));

    internal const string Models = """
        {"object":"list","data":[
          {"id":"Qwen/Qwen2.5-0.5B-Instruct","object":"model","created":1746000000,"owned_by":"vllm","root":"Qwen/Qwen2.5-0.5B-Instruct","parent":null,"max_model_len":32768},
          {"id":"plain","object":"model","created":1746000000,"owned_by":"someone"}
        ]}
        """;

    private const string Usage = "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}";

    internal static async Task CompleteAsync(HttpContext context)
    {
        var request = (await JsonDocument.ParseAsync(context.Request.Body)).RootElement;
        var model = request.GetProperty("model").GetString();
        var head = $$"""{"id":"chatcmpl-7","created":1746000000,"model":"{{model}}","system_fingerprint":null""";
        if (!(request.TryGetProperty("stream", out var stream) && stream.GetBoolean()))
        {
            await context.Response.WriteAsJsonAsync(JsonDocument.Parse(
                $$"""{{head}},"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"stop"}],{{Usage}}}""").RootElement);
            return;
        }
        var includeUsage = request.TryGetProperty("stream_options", out var options) && options.TryGetProperty("include_usage", out var include) && include.GetBoolean();
        var events = new[] { "{\"role\":\"assistant\",\"content\":\"Hel\"}", "{\"content\":\"lo\"}", "{\"content\":\" there\"}" }
            .Select(delta => $$"""{{head}},"object":"chat.completion.chunk","choices":[{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":null}]}""")
            .Append($$"""{{head}},"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}""")
            .Concat(includeUsage ? [$$"""{{head}},"object":"chat.completion.chunk","choices":[],{{Usage}}}"""] : [])
            .Select(data => $"data: {data}\n\n")
            .Append("data: [DONE]\n\n");
        await StandInServer.StreamAsync(context.Response, "text/event-stream", events);
    }
}
