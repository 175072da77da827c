using System.Net;
using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Agentry.Tests.Models;

/// <summary>
/// A stand-in embedding server and an app whose embedding provider points at it, fresh for every test; the tests call
/// the app's <c>/v1/embeddings</c>. The stand-in gives input i (of any request) the vector [i + 1, 0.5, -0.25].
/// </summary>
public abstract class EmbeddingProtocolTests : IAsyncLifetime
{
    protected StandInServer Server { get; private set; } = null!;

    protected AgentryApp App { get; private set; } = null!;

    protected HttpClient Admin { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The routes the stand-in answers, as the real server documents them.</summary>
    protected abstract void MapRoutes(WebApplication server);

    /// <summary>The settings under <c>Agentry:Embeddings</c> for a stand-in at <paramref name="server"/>.</summary>
    protected abstract Dictionary<string, string?> Provider(Uri server);

    public async ValueTask InitializeAsync()
    {
        Server = await StandInServer.StartAsync(MapRoutes);
        App = AgentryApp.Sqlite(Provider(Server.BaseUri).ToDictionary(s => $"Agentry:Embeddings:{s.Key}", s => s.Value));
        Admin = await App.AdminClientAsync();
    }

    protected static float[] Vector(int index) => [index + 1, 0.5f, -0.25f];

    protected Task<HttpResponseMessage> EmbedAsync(string model, params string[] input) =>
        Admin.PostAsync("/v1/embeddings", HttpAssertions.Json(new { model, input }), Ct);

    /// <summary>Embeds two texts through the app and checks the vectors and usage; returns the request the stand-in received at <paramref name="path"/>.</summary>
    protected async Task<JsonElement> EmbedTwoAsync(string model, string path, int promptTokens)
    {
        var body = await (await EmbedAsync(model, "Why is the sky blue?", "Why is the grass green?")).ReadAsync<JsonElement>();

        Assert.Equal(model, body.GetProperty("model").GetString());
        var vectors = body.GetProperty("data").EnumerateArray()
            .Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal([Vector(0), Vector(1)], vectors);
        Assert.Equal(promptTokens, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        return Server.Single("POST", path).Body!.Value;
    }

    /// <summary>The embedding model as <c>/api/v1/models</c> lists it.</summary>
    protected async Task<ModelResponse> ListedAsync() =>
        Assert.Single((await (await Admin.GetAsync("/api/v1/models", Ct)).ReadAsync<ModelListResponse>()).Items, m => m.Type == ModelTypes.Embedding);

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await Server.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Protocol tests of the Ollama embedding provider against a stand-in of Ollama's documented <c>POST /api/embed</c>.</summary>
public sealed class OllamaEmbeddingProtocolTests : EmbeddingProtocolTests
{
    protected override void MapRoutes(WebApplication server) => server.MapPost("/api/embed", Embed);

    protected override Dictionary<string, string?> Provider(Uri server) =>
        new() { ["Provider"] = "ollama", ["Model"] = "all-minilm", ["Endpoints:0"] = server.ToString() };

    [Fact]
    public async Task Protocol_against_a_stand_in_embeds_a_batch_through_api_embed_and_learns_the_dimensions()
    {
        Assert.Equal(new ModelResponse("ollama/all-minilm", "ollama", "all-minilm", null, false, ModelTypes.Embedding, null), await ListedAsync());

        var sent = await EmbedTwoAsync("ollama/all-minilm", "/api/embed", 8);

        Assert.Equal("all-minilm", sent.GetProperty("model").GetString());
        Assert.Equal(["Why is the sky blue?", "Why is the grass green?"], sent.GetProperty("input").EnumerateArray().Select(i => i.GetString()));
        Assert.Equal(3, (await ListedAsync()).Dimensions);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_fails_over_to_the_next_endpoint_when_the_first_is_down()
    {
        await using var app = OllamaApp($"http://127.0.0.1:{RedisProcess.FreePort()}", Server.BaseUri.ToString());
        var admin = await app.AdminClientAsync();

        for (var i = 0; i < 3; i++)
        {
            var response = await admin.PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = "ollama/all-minilm", input = "hi" }), Ct);
            Assert.Equal(Vector(0), (await response.ReadAsync<JsonElement>()).GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));
        }
        Assert.Equal(3, Server.Requests.Count(r => r.Path == "/api/embed"));
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_fails_over_when_an_endpoint_answers_with_an_ollama_error_and_a_5xx()
    {
        await using var failing = await StandInServer.StartAsync(server => server.MapPost(
            "/api/embed", () => Results.Json(new { error = "llama runner process has terminated" }, statusCode: 500)));
        await using var app = OllamaApp(failing.BaseUri.ToString(), Server.BaseUri.ToString());
        var admin = await app.AdminClientAsync();

        var response = await admin.PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = "ollama/all-minilm", input = new[] { "a", "b" } }), Ct);

        Assert.Equal(2, (await response.ReadAsync<JsonElement>()).GetProperty("data").GetArrayLength());
        Assert.Single(failing.Requests);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_answers_503_when_no_endpoint_answers()
    {
        await using var app = OllamaApp($"http://127.0.0.1:{RedisProcess.FreePort()}");

        var response = await (await app.AdminClientAsync()).PostAsync(
            "/v1/embeddings", HttpAssertions.Json(new { model = "ollama/all-minilm", input = "hi" }), Ct);

        await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error");
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_passes_on_an_input_the_server_refuses_as_400()
    {
        var response = await EmbedAsync("ollama/all-minilm", "too long for the server");

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal("input", error.GetProperty("param").GetString());
        Assert.Contains("the input length exceeds the context length", error.GetProperty("message").GetString());
    }

    private static AgentryApp OllamaApp(params string[] endpoints) => AgentryApp.Sqlite(new Dictionary<string, string?>
    {
        ["Agentry:Embeddings:Provider"] = "ollama",
        ["Agentry:Embeddings:Model"] = "all-minilm",
    }.With(endpoints.Select((url, i) => KeyValuePair.Create($"Agentry:Embeddings:Endpoints:{i}", (string?)url)).ToDictionary()));

    /// <summary>Ollama's documented answer: <c>embeddings</c>, one array per input, and the tokens read as <c>prompt_eval_count</c>.</summary>
    private static IResult Embed(JsonElement request)
    {
        var input = request.GetProperty("input");
        if (input.ValueKind == JsonValueKind.Array && input[0].GetString() == "too long for the server")
        {
            // Ollama's documented error form, with the message it gives when truncation is off.
            return Results.Json(new { error = "the input length exceeds the context length" }, statusCode: 400);
        }
        var count = input.ValueKind == JsonValueKind.Array ? input.GetArrayLength() : 1;
        return Results.Json(new Dictionary<string, object>
        {
            ["model"] = request.GetProperty("model").GetString()!,
            ["embeddings"] = Enumerable.Range(0, count).Select(Vector).ToArray(),
            ["total_duration"] = 14143917,
            ["load_duration"] = 1019500,
            ["prompt_eval_count"] = 8,
        });
    }
}

/// <summary>Protocol tests of the OpenAI-compatible embedding provider against a stand-in of OpenAI's documented <c>POST /v1/embeddings</c>.</summary>
public sealed class OpenAiEmbeddingProtocolTests : EmbeddingProtocolTests
{
    private const string Key = "sk-test-embeddings-0123";

    protected override void MapRoutes(WebApplication server) => server.MapPost("/v1/embeddings", Embed);

    protected override Dictionary<string, string?> Provider(Uri server) => new()
    {
        ["Provider"] = "openai", ["Model"] = "text-embedding-3-small", ["Endpoints:0"] = new Uri(server, "/v1").ToString(), ["ApiKey"] = Key,
        ["Dimensions"] = "3",
    };

    [Fact]
    public async Task Protocol_against_a_stand_in_embeds_a_batch_with_the_key_and_the_configured_dimensions()
    {
        Assert.Equal(3, (await ListedAsync()).Dimensions);

        var sent = await EmbedTwoAsync("openai/text-embedding-3-small", "/v1/embeddings", 12);

        Assert.Equal($"Bearer {Key}", Server.Single("POST", "/v1/embeddings").Headers["Authorization"]);
        Assert.Equal("text-embedding-3-small", sent.GetProperty("model").GetString());
        Assert.Equal(["Why is the sky blue?", "Why is the grass green?"], sent.GetProperty("input").EnumerateArray().Select(i => i.GetString()));
        // Dimensions are known, not asked for: servers other than OpenAI's refuse the parameter.
        Assert.False(sent.TryGetProperty("dimensions", out _));
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_passes_on_an_input_the_server_refuses_as_400()
    {
        var response = await EmbedAsync("openai/text-embedding-3-small", "too long for the server");

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal("input", error.GetProperty("param").GetString());
        Assert.Contains("maximum context length", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_asks_for_other_dimensions_to_be_400_before_calling_the_server()
    {
        var response = await Admin.PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = "openai/text-embedding-3-small", input = "hi", dimensions = 2 }), Ct);

        await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Empty(Server.Requests);
    }

    /// <summary>
    /// OpenAI's documented answer: <c>data</c> of <c>embedding</c> objects with their <c>index</c>, each vector as numbers or,
    /// with <c>encoding_format</c> <c>base64</c>, as base64 little-endian floats; and <c>usage</c>.
    /// </summary>
    private static IResult Embed(JsonElement request)
    {
        var input = request.GetProperty("input");
        if (input.ValueKind == JsonValueKind.Array && input[0].GetString() == "too long for the server")
        {
            return Results.Json(new
            {
                error = new
                {
                    message = "This model's maximum context length is 8192 tokens, however you requested 9000 tokens.",
                    type = "invalid_request_error", param = (string?)null, code = (string?)null,
                },
            }, statusCode: 400);
        }
        var base64 = request.TryGetProperty("encoding_format", out var format) && format.GetString() == "base64";
        var data = Enumerable.Range(0, input.ValueKind == JsonValueKind.Array ? input.GetArrayLength() : 1).Select(i => new
        {
            @object = "embedding",
            index = i,
            embedding = base64
                ? (object)Convert.ToBase64String(Vector(i).SelectMany(BitConverter.GetBytes).ToArray())
                : Vector(i),
        });
        return Results.Json(new
        {
            @object = "list", data, model = request.GetProperty("model").GetString(), usage = new { prompt_tokens = 12, total_tokens = 12 },
        });
    }
}

public sealed class EmbeddingSettingsTests
{
    [Theory]
    [InlineData("Provider", "bert", "Agentry:Embeddings:Provider")]
    [InlineData("Model", "bge-small", "Agentry:Embeddings:Model")]
    public async Task A_bad_embedding_setting_stops_start_up_with_one_line_naming_the_key(string setting, string value, string key)
    {
        var directory = TempFiles.Directory();
        await using var agentry = AgentryProcess.Start(
            directory, new Dictionary<string, string> { [$"Agentry__Embeddings__{setting}"] = value }, "--urls", $"http://127.0.0.1:{RedisProcess.FreePort()}");

        Assert.Equal(2, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(agentry.Stderr, l => l.Length > 0);
        Assert.StartsWith("agentry: configuration error:", line);
        Assert.Contains(key, line);
    }
}
