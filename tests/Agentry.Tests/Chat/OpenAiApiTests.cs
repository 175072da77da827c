using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Workspaces;

namespace Agentry.Tests.Chat;

/// <summary>Agentry's OpenAI-compatible <c>/v1</c>, called as an OpenAI client library calls it, on the tiny model.</summary>
public sealed class OpenAiApiTests(OpenAiGatewayFixture fixture) : IClassFixture<OpenAiGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static object Request(bool stream = false, bool includeUsage = false, string model = "local/tiny", int maxTokens = 8) => new
    {
        model,
        messages = new object[]
        {
            new { role = "developer", content = "You are tiny." },
            new { role = "user", content = new[] { new { type = "text", text = "hello " }, new { type = "text", text = "world" } } },
        },
        temperature = 0,
        top_p = 1,
        max_completion_tokens = maxTokens,
        seed = 7,
        stream,
        stream_options = stream ? new { include_usage = includeUsage } : null,
    };

    [Fact]
    public async Task Models_are_listed_in_openai_s_format()
    {
        var body = await (await fixture.Chat.GetAsync("/v1/models", Ct)).ReadAsync<JsonElement>();

        Assert.Equal("list", body.GetProperty("object").GetString());
        var models = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["local/tiny", "minilm/all-minilm-l6-v2"], models.Select(m => m.GetProperty("id").GetString()));
        var model = models[0];
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal("local", model.GetProperty("owned_by").GetString());
        Assert.Equal(TinyGguf.ContextLength, model.GetProperty("context_length").GetInt32());
        Assert.Equal("chat", model.GetProperty("type").GetString());
        Assert.Equal("embedding", models[1].GetProperty("type").GetString());
        Assert.Equal("minilm", models[1].GetProperty("owned_by").GetString());
    }

    [Fact]
    public async Task A_whole_answer_is_a_chat_completion_with_usage()
    {
        var body = await (await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request()), Ct)).ReadAsync<JsonElement>();

        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.Equal("local/tiny", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("created").GetInt64() > 1_700_000_000);
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.False(string.IsNullOrWhiteSpace(choice.GetProperty("message").GetProperty("content").GetString()));
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = body.GetProperty("usage");
        var (prompt, completion) = (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32());
        Assert.True(prompt > 5, $"prompt tokens: {prompt}");
        Assert.Equal(8, completion);
        Assert.Equal(prompt + completion, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_streamed_answer_is_chunks_then_done_and_makes_the_whole_answer()
    {
        var whole = await (await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request()), Ct)).ReadAsync<JsonElement>();

        var response = await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request(stream: true, includeUsage: true)), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var chunks = OpenAiGatewayFixture.Chunks(await response.Content.ReadAsStringAsync(Ct));
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        var choices = chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).ToList();
        Assert.Equal("assistant", choices[0].GetProperty("delta").GetProperty("role").GetString());
        var pieces = choices.Select(c => c.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : null).OfType<string>().ToList();
        Assert.True(pieces.Count >= 3, $"only {pieces.Count} pieces");
        var message = whole.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.Equal(message, string.Concat(pieces));
        Assert.Equal(["length"], choices.Select(c => c.GetProperty("finish_reason")).Where(f => f.ValueKind != JsonValueKind.Null).Select(f => f.GetString()));
        // With include_usage, a last chunk without choices carries the usage; the others have usage null.
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(whole.GetProperty("usage").ToString(), chunks[^1].GetProperty("usage").ToString());
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
    }

    [Fact]
    public async Task Without_include_usage_no_usage_chunk_is_sent()
    {
        var response = await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request(stream: true)), Ct);

        var chunks = OpenAiGatewayFixture.Chunks(await response.Content.ReadAsStringAsync(Ct));
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        Assert.All(chunks, c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
    }

    [Fact]
    public async Task Without_credentials_it_is_401_in_openai_s_error_envelope()
    {
        var response = await fixture.Upstream.Client().GetAsync("/v1/models", Ct);

        await AssertErrorAsync(response, HttpStatusCode.Unauthorized, "authentication_error");
    }

    [Fact]
    public async Task A_key_without_the_chat_scope_is_403_for_both_endpoints()
    {
        var key = await AgentryApp.CreateApiKeyAsync(fixture.UpstreamAdmin, fixture.Workspace, ApiKeyScopes.AgentsRead);
        var client = fixture.Upstream.KeyClient(key);

        var error = await AssertErrorAsync(await client.GetAsync("/v1/models", Ct), HttpStatusCode.Forbidden, "permission_error");
        Assert.Contains("chat", error.GetProperty("message").GetString());
        await AssertErrorAsync(await client.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request()), Ct), HttpStatusCode.Forbidden, "permission_error");
    }

    [Fact]
    public async Task A_signed_in_user_s_access_token_is_accepted_in_the_workspace_it_names()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = HttpAssertions.Json(Request(maxTokens: 2)) };
        request.Headers.Add(CurrentWorkspace.HeaderName, fixture.Workspace.ToString());
        var response = await fixture.UpstreamAdmin.SendAsync(request, Ct);

        Assert.Equal(2, (await response.ReadAsync<JsonElement>()).GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found()
    {
        var response = await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request(model: "local/nothing")), Ct);

        var error = await AssertErrorAsync(response, HttpStatusCode.NotFound, "invalid_request_error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("""{"model":"local/tiny","messages":[]}""", "messages")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[0].content")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"user","content":"hi"}],"temperature":3}""", "temperature")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "max_tokens")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}""", "stop")]
    [InlineData("""{"model":"local/tiny","messages":[{"role":"user","content":"hi"}],"n":2}""", "n")]
    public async Task A_bad_request_is_400_naming_the_parameter(string body, string param)
    {
        var response = await fixture.Chat.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        var error = await AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Malformed_json_is_400_in_openai_s_envelope()
    {
        var response = await fixture.Chat.PostAsync("/v1/chat/completions", new StringContent("{\"model\":", Encoding.UTF8, "application/json"), Ct);

        var error = await AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal("malformed_json", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_window_is_400_context_length_exceeded()
    {
        var words = string.Join(' ', Enumerable.Repeat("hello world", TinyGguf.ContextLength));
        var response = await fixture.Chat.PostAsync("/v1/chat/completions", HttpAssertions.Json(new
        {
            model = "local/tiny",
            messages = new[] { new { role = "user", content = words } },
        }), Ct);

        var error = await AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_model_server_that_is_down_is_503()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "down",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = $"http://127.0.0.1:{RedisProcess.FreePort()}/v1",
        });
        var admin = await app.AdminClientAsync();

        var response = await admin.PostAsync("/v1/chat/completions", HttpAssertions.Json(Request(model: "down/any")), Ct);

        await AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error");
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Rate_limits_apply_and_answer_429_in_openai_s_envelope()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:RateLimits:Api:PermitsPerPeriod"] = "1",
            ["Agentry:RateLimits:Api:Burst"] = "1",
            ["Agentry:RateLimits:Api:Period"] = "01:00:00",
        });
        var admin = await app.AdminClientAsync();

        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/v1/models", Ct)).StatusCode);
        var refused = await admin.GetAsync("/v1/models", Ct);

        await AssertErrorAsync(refused, HttpStatusCode.TooManyRequests, "rate_limit_error");
        Assert.NotNull(refused.Headers.RetryAfter);
    }

    [Fact]
    public async Task The_endpoints_are_documented()
    {
        var paths = JsonDocument.Parse(await fixture.UpstreamAdmin.GetStringAsync("/openapi/v1.json", Ct)).RootElement.GetProperty("paths");

        var post = paths.GetProperty("/v1/chat/completions").GetProperty("post");
        Assert.Equal("OpenAiCreateChatCompletion", post.GetProperty("operationId").GetString());
        Assert.True(post.GetProperty("responses").TryGetProperty("404", out _));
        Assert.Equal("OpenAiListModels", paths.GetProperty("/v1/models").GetProperty("get").GetProperty("operationId").GetString());
    }

    /// <summary>Asserts OpenAI's error envelope with this status and type (never problem details); returns <c>error</c>.</summary>
    internal static async Task<JsonElement> AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal(new MediaTypeHeaderValue("application/json").MediaType, response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _), text);
        return error;
    }
}
