using System.Net;
using System.Text;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Chat;

/// <summary>
/// <c>POST /v1/embeddings</c> on the default embedding model, all-MiniLM-L6-v2 run in-process: real vectors, called as
/// OpenAI's client libraries call it, with a key of scope <c>chat</c>.
/// </summary>
public sealed class OpenAiEmbeddingTests(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    private const string Model = "minilm/all-minilm-l6-v2";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<HttpClient> ChatKeyAsync(string scope = ApiKeyScopes.Chat) =>
        fixture.App.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, await fixture.App.CreateWorkspaceAsync(), scope));

    private async Task<JsonElement> EmbedAsync(object input, string? format = null)
    {
        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = Model, input, encoding_format = format }), Ct);
        return await response.ReadAsync<JsonElement>();
    }

    private static float[][] Vectors(JsonElement body) =>
        [.. body.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray())];

    private static double Cosine(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    [Fact]
    public async Task Similar_sentences_get_closer_384_dimensional_unit_vectors_than_unrelated_ones()
    {
        var client = await ChatKeyAsync();

        var response = await client.PostAsync("/v1/embeddings", HttpAssertions.Json(new
        {
            model = Model,
            input = new[] { "The cat sits on the mat.", "A cat is sitting on a rug.", "Quarterly revenue grew by ten percent." },
        }), Ct);

        var body = await response.ReadAsync<JsonElement>();
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Equal(Model, body.GetProperty("model").GetString());
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], data.Select(d => d.GetProperty("index").GetInt32()));
        Assert.All(data, d => Assert.Equal("embedding", d.GetProperty("object").GetString()));
        var vectors = Vectors(body);
        Assert.All(vectors, v => Assert.Equal(384, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(Cosine(v, v)), 3));
        var (similar, unrelated) = (Cosine(vectors[0], vectors[1]), Cosine(vectors[0], vectors[2]));
        Assert.True(similar > unrelated + 0.3, $"similar {similar:F3}, unrelated {unrelated:F3}");
        var usage = body.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() >= 20, usage.ToString());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_call_is_recorded_in_the_workspace_s_usage_ledger_under_its_key()
    {
        var client = await ChatKeyAsync();

        var body = await (await client.PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = Model, input = new[] { "hello world", "the cat" } }), Ct))
            .ReadAsync<JsonElement>();
        var report = await (await client.GetAsync("/api/v1/usage?groupBy=model", Ct)).ReadAsync<JsonElement>();

        var tokens = body.GetProperty("usage").GetProperty("prompt_tokens").GetInt64();
        var row = Assert.Single(report.GetProperty("items").EnumerateArray());
        Assert.Equal(Model, row.GetProperty("key").GetString());
        Assert.Equal(tokens, row.GetProperty("promptTokens").GetInt64());
        Assert.Equal(0, row.GetProperty("completionTokens").GetInt64());
        Assert.Equal(1, row.GetProperty("calls").GetInt64());
    }

    [Fact]
    public async Task Usage_counts_the_word_pieces_of_the_model_s_own_tokenizer()
    {
        var body = await EmbedAsync("hello world");

        Assert.Equal(2, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Single(body.GetProperty("data").EnumerateArray());
    }

    [Fact]
    public async Task A_batch_keeps_the_order_of_its_inputs_and_gives_what_each_input_gives_alone()
    {
        // Of different lengths and more than one internal batch, so that encoding sorts and splits them.
        var inputs = Enumerable.Range(0, 40)
            .Select(i => $"Sentence {i}: " + string.Join(' ', Enumerable.Repeat(i % 2 == 0 ? "apples and pears" : "trains", 1 + i % 7)))
            .ToArray();

        var batch = Vectors(await EmbedAsync(inputs));

        Assert.Equal(inputs.Length, batch.Length);
        foreach (var i in (int[])[0, 1, 7, 20, 33, 39])
        {
            var alone = Vectors(await EmbedAsync(inputs[i]))[0];
            Assert.True(Cosine(alone, batch[i]) > 0.9999, $"input {i} differs between the batch and alone");
        }
        Assert.True(Cosine(batch[0], batch[1]) < 0.99);
    }

    [Fact]
    public async Task Base64_is_the_little_endian_floats_of_the_float_form()
    {
        var floats = Vectors(await EmbedAsync(new[] { "base64 please", "and another" }))[1];

        var encoded = (await EmbedAsync(new[] { "base64 please", "and another" }, "base64")).GetProperty("data")[1].GetProperty("embedding").GetString()!;

        var bytes = Convert.FromBase64String(encoded);
        Assert.Equal(384 * sizeof(float), bytes.Length);
        Assert.Equal(floats, Enumerable.Range(0, 384).Select(i => BitConverter.ToSingle(bytes, i * sizeof(float))));
    }

    [Fact]
    public async Task Dimensions_equal_to_the_model_s_own_are_accepted()
    {
        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = Model, input = "x", dimensions = 384 }), Ct);

        Assert.Equal(384, Vectors(await response.ReadAsync<JsonElement>())[0].Length);
    }

    [Theory]
    [InlineData("""{"input":"hi"}""", "model")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2"}""", "input")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":""}""", "input")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":[]}""", "input")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":["fine","  "]}""", "input[1]")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":[[101,7592]]}""", "input")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":7}""", "input")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":"hi","encoding_format":"hex"}""", "encoding_format")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":"hi","dimensions":256}""", "dimensions")]
    [InlineData("""{"model":"minilm/all-minilm-l6-v2","input":"hi","dimensions":0}""", "dimensions")]
    public async Task A_bad_request_is_400_naming_the_parameter(string body, string param)
    {
        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task More_than_2048_inputs_is_400()
    {
        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = Model, input = Enumerable.Repeat("a", 2049) }), Ct);

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Contains("2048", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_input_longer_than_the_model_reads_is_400_context_length_exceeded_not_cut()
    {
        var longest = string.Join(' ', Enumerable.Repeat("word", MiniLmEmbeddingGenerator.MaxInputTokens));
        Assert.Single(Vectors(await EmbedAsync(longest)));

        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = Model, input = new[] { "short", longest + " word" } }), Ct);

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("input[1]", error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found()
    {
        var response = await (await ChatKeyAsync()).PostAsync("/v1/embeddings", HttpAssertions.Json(new { model = "minilm/other", input = "hi" }), Ct);

        var error = await OpenAiApiTests.AssertErrorAsync(response, HttpStatusCode.NotFound, "invalid_request_error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Contains(Model, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Without_credentials_it_is_401_and_a_key_without_the_chat_scope_403()
    {
        var body = new { model = Model, input = "hi" };

        await OpenAiApiTests.AssertErrorAsync(
            await fixture.App.Client().PostAsync("/v1/embeddings", HttpAssertions.Json(body), Ct), HttpStatusCode.Unauthorized, "authentication_error");
        var agents = await ChatKeyAsync(ApiKeyScopes.AgentsRead);
        var error = await OpenAiApiTests.AssertErrorAsync(
            await agents.PostAsync("/v1/embeddings", HttpAssertions.Json(body), Ct), HttpStatusCode.Forbidden, "permission_error");
        Assert.Contains("chat", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task The_endpoint_is_documented()
    {
        var paths = JsonDocument.Parse(await fixture.Client.GetStringAsync("/openapi/v1.json", Ct)).RootElement.GetProperty("paths");

        var post = paths.GetProperty("/v1/embeddings").GetProperty("post");
        Assert.Equal("OpenAiCreateEmbedding", post.GetProperty("operationId").GetString());
        Assert.True(post.GetProperty("responses").TryGetProperty("400", out _));
    }
}

public sealed class MiniLmLoadingTests
{
    [Fact]
    public async Task The_encoder_is_made_on_the_first_embedding_not_at_start_up_and_its_tokenizer_counts_word_pieces()
    {
        await using var app = AgentryApp.Sqlite();
        var admin = await app.AdminClientAsync();
        var models = app.Services.GetRequiredService<EmbeddingModels>();
        var minilm = models.Generator.GetService<MiniLmEmbeddingGenerator>()!;

        var listing = await (await admin.GetAsync("/api/v1/models")).ReadAsync<ModelListResponse>();
        Assert.Equal(new ModelResponse(models.Id, "minilm", "all-minilm-l6-v2", 256, false, ModelTypes.Embedding, 384), Assert.Single(listing.Items));
        Assert.False(minilm.IsLoaded);

        var embeddings = await app.Services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>()
            .GenerateAsync(["through the framework abstraction"], cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(minilm.IsLoaded);
        Assert.Equal(384, Assert.Single(embeddings).Vector.Length);
        Assert.Equal(15, models.Tokens!.CountTokens("Unbelievably, antidisestablishmentarianism!")); // un ##bel ##ie ##va ##bly , anti ##dis ##est ##ab ##lish ##ment ##arian ##ism !
        Assert.Equal(254, models.Tokens.MaxInputTokens);
    }
}
