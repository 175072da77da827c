using Agentry.Models;
using Microsoft.Extensions.AI;

namespace Agentry.Tests.Models;

/// <summary>Real llama.cpp inference on the tiny model a test writes: loading, generation, streaming, limits, cancellation, usage.</summary>
public sealed class LlamaCppProviderTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.System, "You are tiny."), new(ChatRole.User, "hello world")];

    private static ChatOptions Greedy(int maxOutputTokens) => new() { MaxOutputTokens = maxOutputTokens, Temperature = 0 };

    [Fact]
    public void The_model_writer_is_deterministic()
    {
        Assert.Equal(TinyGguf.Build(seed: 42), TinyGguf.Build(seed: 42));
        Assert.NotEqual(TinyGguf.Build(seed: 42), TinyGguf.Build(seed: 7));
        Assert.Equal(File.ReadAllBytes(fixture.ModelPath), TinyGguf.Build(seed: 42));
    }

    [Fact]
    public async Task The_catalog_lists_the_model_with_the_context_length_from_its_metadata()
    {
        var listings = await fixture.Catalog.ListAsync(TestContext.Current.CancellationToken);

        var local = Assert.Single(listings, l => l.Provider == "local");
        Assert.True(local.IsAvailable, local.Error);
        var model = Assert.Single(local.Models);
        Assert.Equal(new ModelResponse("local/tiny", "local", "tiny", TinyGguf.ContextLength, false), model);
        Assert.Equal("plain/untemplated", Assert.Single(Assert.Single(listings, l => l.Provider == "plain").Models).Id);
    }

    [Fact]
    public async Task It_generates_text_and_reports_token_usage()
    {
        var client = await ClientAsync("local/tiny");

        var response = await client.GetResponseAsync(Hello, Greedy(12), TestContext.Current.CancellationToken);

        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.All(response.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries), word => Assert.Contains(word, TinyGguf.Words));
        Assert.Equal(ChatRole.Assistant, response.Messages.Single().Role);
        Assert.NotNull(response.Usage);
        Assert.True(response.Usage.InputTokenCount > 5, $"prompt tokens: {response.Usage.InputTokenCount}");
        Assert.Equal(12, response.Usage.OutputTokenCount);
        Assert.Equal(response.Usage.InputTokenCount + 12, response.Usage.TotalTokenCount);
        // Greedy sampling on the same weights gives the same answer again.
        Assert.Equal(response.Text, (await client.GetResponseAsync(Hello, Greedy(12), TestContext.Current.CancellationToken)).Text);
    }

    [Fact]
    public async Task A_model_without_a_chat_template_generates_from_plain_turns()
    {
        var client = await ClientAsync("plain/untemplated");

        var response = await client.GetResponseAsync(Hello, Greedy(8), TestContext.Current.CancellationToken);

        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.True(response.Usage!.OutputTokenCount is > 0 and <= 8);
    }

    [Fact]
    public async Task Streaming_yields_several_updates_that_make_up_the_whole_answer()
    {
        var client = await ClientAsync("local/tiny");

        var updates = await client.GetStreamingResponseAsync(Hello, Greedy(12), TestContext.Current.CancellationToken).ToListAsync();

        Assert.True(updates.Count(u => u.Text.Length > 0) >= 3, $"only {updates.Count} updates");
        var whole = await client.GetResponseAsync(Hello, Greedy(12), TestContext.Current.CancellationToken);
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(12, updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details.OutputTokenCount);
    }

    [Fact]
    public async Task MaxOutputTokens_caps_the_answer_and_says_so()
    {
        var client = await ClientAsync("local/tiny");

        var short1 = await client.GetResponseAsync(Hello, Greedy(3), TestContext.Current.CancellationToken);
        var longer = await client.GetResponseAsync(Hello, Greedy(20), TestContext.Current.CancellationToken);

        Assert.Equal(3, short1.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, short1.FinishReason);
        Assert.Equal(20, longer.Usage!.OutputTokenCount);
        Assert.StartsWith(short1.Text, longer.Text);
        Assert.True(longer.Text.Length > short1.Text.Length);
    }

    [Fact]
    public async Task An_already_cancelled_request_throws_instead_of_answering_empty()
    {
        var client = await ClientAsync("local/tiny");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(Hello, Greedy(12), cancelled.Token));
    }

    [Fact]
    public async Task Cancelling_mid_stream_stops_generation()
    {
        var client = await ClientAsync("local/tiny");
        using var cancel = new CancellationTokenSource();
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Hello, Greedy(200), cancel.Token))
            {
                if (update.Text.Length > 0 && ++received == 2)
                {
                    await cancel.CancelAsync();
                }
            }
        });
        Assert.InRange(received, 2, 3);
    }

    [Fact]
    public async Task Concurrent_requests_share_the_loaded_model_and_each_get_their_own_answer()
    {
        var client = await ClientAsync("local/tiny");

        var answers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.GetResponseAsync(Hello, Greedy(10), TestContext.Current.CancellationToken)));

        Assert.All(answers, a => Assert.Equal(answers[0].Text, a.Text));
        Assert.All(answers, a => Assert.Equal(10, a.Usage!.OutputTokenCount));
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_window_is_refused()
    {
        var client = await ClientAsync("local/tiny");
        var essay = string.Join(' ', Enumerable.Repeat("the quick brown fox jumps over the lazy dog", 60));

        var refused = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new(ChatRole.User, essay)], Greedy(4), TestContext.Current.CancellationToken));
        Assert.Contains("context window of 256", refused.Message);
    }

    [Fact]
    public async Task Unknown_models_resolve_to_nothing()
    {
        Assert.Null(await fixture.Catalog.ResolveAsync("local/other", TestCaller.Instance, TestContext.Current.CancellationToken));
        Assert.Null(await fixture.Catalog.ResolveAsync("nowhere/tiny", TestCaller.Instance, TestContext.Current.CancellationToken));
        Assert.Null(await fixture.Catalog.ResolveAsync("tiny", TestCaller.Instance, TestContext.Current.CancellationToken));
    }

    private async Task<IChatClient> ClientAsync(string id)
    {
        var model = await fixture.Catalog.ResolveAsync(id, TestCaller.Instance, TestContext.Current.CancellationToken);
        Assert.NotNull(model);
        Assert.Equal(id, model.Model.Id);
        return model.Client;
    }
}
