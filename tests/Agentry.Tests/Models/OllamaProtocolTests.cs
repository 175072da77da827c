using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Models;

/// <summary>
/// Protocol tests of the Ollama provider against a stand-in that follows Ollama's documented API (<c>GET /api/tags</c>,
/// <c>POST /api/show</c>, <c>POST /api/chat</c> with NDJSON streaming): Ollama itself cannot run on these machines. They
/// check what Agentry sends and what it makes of the answers, not a real model.
/// </summary>
public sealed class OllamaProtocolTests : ProviderProtocolTests
{
    protected override void MapRoutes(WebApplication server)
    {
        server.MapGet("/api/tags", () => Results.Text(Tags, "application/json"));
        server.MapPost("/api/show", Show);
        server.MapPost("/api/chat", ChatAsync);
    }

    protected override Dictionary<string, string?> Provider(Uri server) =>
        new() { ["Name"] = "ollama", ["Kind"] = "ollama", ["Endpoints:0"] = server.ToString() };

    [Fact]
    public async Task Protocol_against_a_stand_in_lists_tags_with_context_length_and_tools_from_show()
    {
        var listing = Assert.Single(await Catalog.ListAsync(TestContext.Current.CancellationToken));

        Assert.True(listing.IsAvailable, listing.Error);
        Assert.Equal(
            [
                new ModelResponse("ollama/llama3.2:1b", "ollama", "llama3.2:1b", 131072, true),
                new ModelResponse("ollama/gemma:2b", "ollama", "gemma:2b", 8192, false),
            ],
            listing.Models);
        Assert.Single(Server.Requests, r => r.Path == "/api/tags");
        var shown = Server.Requests.Where(r => r.Path == "/api/show").Select(r => r.Body!.Value.GetProperty("model").GetString()).Order();
        Assert.Equal(["gemma:2b", "llama3.2:1b"], shown);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_streams_chat_as_ndjson_with_num_ctx_from_the_model()
    {
        var model = await ResolveAsync("ollama/llama3.2:1b");
        List<ChatMessage> messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Say hello")];

        var updates = await model.Client.GetStreamingResponseAsync(messages, new ChatOptions { Temperature = 0 }, TestContext.Current.CancellationToken).ToListAsync();

        Assert.Equal(["Hel", "lo", " there"], updates.Select(u => u.Text).Where(t => t.Length > 0));
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
        Assert.Equal((26, 3), (usage.InputTokenCount, usage.OutputTokenCount));
        Assert.Contains(updates, u => u.FinishReason == ChatFinishReason.Stop);

        var sent = Server.Single("POST", "/api/chat").Body!.Value;
        Assert.Equal("llama3.2:1b", sent.GetProperty("model").GetString());
        Assert.True(sent.GetProperty("stream").GetBoolean());
        Assert.Equal(131072, sent.GetProperty("options").GetProperty("num_ctx").GetInt32());
        Assert.Equal(0, sent.GetProperty("options").GetProperty("temperature").GetDouble());
        Assert.Equal([("system", "Be brief."), ("user", "Say hello")], Messages(sent, content => content.GetString()));
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_answers_whole_when_not_streaming()
    {
        var sent = await AnswerWholeAsync("ollama/gemma:2b", "/api/chat", (26, 3));

        Assert.Equal("gemma:2b", sent.GetProperty("model").GetString());
        Assert.Equal(8192, sent.GetProperty("options").GetProperty("num_ctx").GetInt32());
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_lists_from_the_next_endpoint_when_the_first_is_down()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "ollama",
            ["Agentry:Llm:Providers:0:Kind"] = "ollama",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = $"http://127.0.0.1:{RedisProcess.FreePort()}",
            ["Agentry:Llm:Providers:0:Endpoints:1"] = Server.BaseUri.ToString(),
        });

        var listing = Assert.Single(await app.Services.GetRequiredService<ModelCatalog>().ListAsync(TestContext.Current.CancellationToken));

        Assert.True(listing.IsAvailable, listing.Error);
        Assert.Equal(2, listing.Models.Count);
    }

    private const string Tags = """
        {"models":[
          {"name":"llama3.2:1b","model":"llama3.2:1b","modified_at":"2025-05-01T10:00:00.000000Z","size":1321098329,"digest":"baf6a787fdffd633537aa2eb51cfd54cb93ff08e28040095462bb63daf552878",
           "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"1.2B","quantization_level":"Q8_0"}},
          {"name":"gemma:2b","model":"gemma:2b","modified_at":"2025-04-01T10:00:00.000000Z","size":1678456656,"digest":"b50d6c999e592ae4f79acae23b4feaefbdfceaa7cd366df2610e3072c052a160",
           "details":{"parent_model":"","format":"gguf","family":"gemma","families":["gemma"],"parameter_size":"3B","quantization_level":"Q4_0"}}
        ]}
        """;

    private static IResult Show(JsonElement request) => request.GetProperty("model").GetString() switch
    {
        "llama3.2:1b" => Results.Text("""
            {"modelfile":"FROM llama3.2:1b","parameters":"stop \"<|eot_id|>\"","template":"{{ .Prompt }}",
             "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"1.2B","quantization_level":"Q8_0"},
             "model_info":{"general.architecture":"llama","general.file_type":7,"general.parameter_count":1235814432,"general.quantization_version":2,
               "llama.attention.head_count":32,"llama.block_count":16,"llama.context_length":131072,"llama.embedding_length":2048},
             "capabilities":["completion","tools"],"modified_at":"2025-05-01T10:00:00.000000Z"}
            """, "application/json"),
        "gemma:2b" => Results.Text("""
            {"modelfile":"FROM gemma:2b","parameters":"","template":"{{ .Prompt }}",
             "details":{"parent_model":"","format":"gguf","family":"gemma","families":["gemma"],"parameter_size":"3B","quantization_level":"Q4_0"},
             "model_info":{"general.architecture":"gemma","general.parameter_count":2506172416,"gemma.context_length":8192,"gemma.block_count":18},
             "capabilities":["completion"],"modified_at":"2025-04-01T10:00:00.000000Z"}
            """, "application/json"),
        _ => Results.Text("""{"error":"model not found"}""", "application/json", statusCode: 404),
    };

    private static async Task ChatAsync(HttpContext context)
    {
        var request = (await JsonDocument.ParseAsync(context.Request.Body)).RootElement;
        var model = request.GetProperty("model").GetString();
        const string done = "\"done\":true,\"done_reason\":\"stop\",\"total_duration\":5191566416,\"load_duration\":2154458,\"prompt_eval_count\":26,\"prompt_eval_duration\":383809000,\"eval_count\":3,\"eval_duration\":4799921000";
        if (request.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.False)
        {
            await context.Response.WriteAsJsonAsync(JsonDocument.Parse(
                $$"""{"model":"{{model}}","created_at":"2025-05-01T10:00:00Z","message":{"role":"assistant","content":"Hello there"},{{done}}}""").RootElement);
            return;
        }
        var pieces = new[] { "Hel", "lo", " there" }
            .Select(p => $$"""{"model":"{{model}}","created_at":"2025-05-01T10:00:00Z","message":{"role":"assistant","content":"{{p}}"},"done":false}""" + "\n")
            .Append($$"""{"model":"{{model}}","created_at":"2025-05-01T10:00:00Z","message":{"role":"assistant","content":""},{{done}}}""" + "\n");
        await StandInServer.StreamAsync(context.Response, "application/x-ndjson", pieces);
    }
}
