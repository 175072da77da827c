using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Chat;

/// <summary>
/// End to end: the OpenAI-compatible provider of one Agentry instance (the gateway) against a second instance's
/// <c>/v1</c>, which runs the tiny llama.cpp model. What the gateway gets must be what the second instance produces.
/// </summary>
public sealed class OpenAiEndToEndTests(OpenAiGatewayFixture fixture) : IClassFixture<OpenAiGatewayFixture>
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.System, "You are tiny."), new(ChatRole.User, "hello world")];

    private static ChatOptions Greedy => new() { MaxOutputTokens = 10, Temperature = 0 };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_gateway_lists_the_second_instance_s_model_with_its_context_length()
    {
        var listing = Assert.Single(await Catalog(fixture.Gateway).ListAsync(Ct));

        Assert.True(listing.IsAvailable, listing.Error);
        Assert.Equal(new ModelResponse("remote/local/tiny", "remote", "local/tiny", TinyGguf.ContextLength, null), Assert.Single(listing.Models));
    }

    [Fact]
    public async Task A_whole_answer_through_the_gateway_is_the_second_instance_s_answer_with_its_usage()
    {
        var direct = await (await ResolveAsync(fixture.Upstream, "local/tiny")).Client.GetResponseAsync(Hello, Greedy, Ct);

        var relayed = await (await ResolveAsync(fixture.Gateway, "remote/local/tiny")).Client.GetResponseAsync(Hello, Greedy, Ct);

        Assert.False(string.IsNullOrWhiteSpace(direct.Text));
        Assert.Equal(direct.Text, relayed.Text);
        Assert.Equal(ChatFinishReason.Length, relayed.FinishReason);
        Assert.Equal(10, relayed.Usage!.OutputTokenCount);
        Assert.Equal(direct.Usage!.InputTokenCount, relayed.Usage.InputTokenCount);
        Assert.Equal(direct.Usage.TotalTokenCount, relayed.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task A_streamed_answer_through_the_gateway_arrives_in_pieces_that_make_the_second_instance_s_answer()
    {
        var direct = await (await ResolveAsync(fixture.Upstream, "local/tiny")).Client.GetResponseAsync(Hello, Greedy, Ct);

        var updates = await (await ResolveAsync(fixture.Gateway, "remote/local/tiny")).Client.GetStreamingResponseAsync(Hello, Greedy, Ct).ToListAsync(Ct);

        Assert.True(updates.Count(u => u.Text.Length > 0) >= 3, $"only {updates.Count} updates");
        Assert.Equal(direct.Text, string.Concat(updates.Select(u => u.Text)));
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>()).Details;
        Assert.Equal((direct.Usage!.InputTokenCount, 10L), (usage.InputTokenCount, usage.OutputTokenCount));
    }

    [Fact]
    public async Task The_gateway_s_own_v1_relays_a_streamed_answer_from_the_second_instance()
    {
        var direct = await (await ResolveAsync(fixture.Upstream, "local/tiny")).Client.GetResponseAsync(Hello, Greedy, Ct);
        var admin = await fixture.Gateway.AdminClientAsync();

        var response = await admin.PostAsync("/v1/chat/completions", HttpAssertions.Json(new
        {
            model = "remote/local/tiny",
            messages = new[] { new { role = "system", content = "You are tiny." }, new { role = "user", content = "hello world" } },
            temperature = 0,
            max_tokens = 10,
            stream = true,
            stream_options = new { include_usage = true },
        }), Ct);

        var chunks = OpenAiGatewayFixture.Chunks(await response.Content.ReadAsStringAsync(Ct));
        var text = string.Concat(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray())
            .Select(c => c.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : ""));
        Assert.Equal(direct.Text, text);
        var usage = chunks[^1].GetProperty("usage");
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(10, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(direct.Usage!.InputTokenCount, usage.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal("remote/local/tiny", chunks[0].GetProperty("model").GetString());
    }

    [Fact]
    public async Task Embeddings_through_the_gateway_are_the_second_instance_s_minilm_vectors_with_its_token_counts()
    {
        string[] inputs = ["The cat sits on the mat.", "Quarterly revenue grew by ten percent."];
        var direct = await fixture.Upstream.Services.GetRequiredService<EmbeddingModels>().GenerateAsync(inputs, Ct);
        var gateway = fixture.Gateway.Services.GetRequiredService<EmbeddingModels>();

        // Through the OpenAI SDK, which asks for base64: the vectors arrive bit for bit.
        var relayed = await gateway.GenerateAsync(inputs, Ct);

        Assert.Equal("openai/minilm/all-minilm-l6-v2", gateway.Id);
        Assert.Equal(direct.Select(e => e.Vector.ToArray()), relayed.Select(e => e.Vector.ToArray()));
        Assert.Equal(direct.Usage!.InputTokenCount, relayed.Usage!.InputTokenCount);
        Assert.Equal(384, gateway.Dimensions);
    }

    [Fact]
    public async Task The_second_instance_s_embedding_model_is_not_listed_as_a_chat_model_by_the_gateway()
    {
        var listing = Assert.Single(await Catalog(fixture.Gateway).ListAsync(Ct));

        Assert.DoesNotContain(listing.Models, m => m.Name.StartsWith("minilm/", StringComparison.Ordinal));
        Assert.Single(listing.Models);
    }

    private static ModelCatalog Catalog(AgentryApp app) => app.Services.GetRequiredService<ModelCatalog>();

    private static async Task<ChatModel> ResolveAsync(AgentryApp app, string id) =>
        await Catalog(app).ResolveAsync(id, TestCaller.Instance, Ct) ?? throw new Xunit.Sdk.XunitException($"{id} did not resolve");
}
