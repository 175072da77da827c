using Agentry.Hosting;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Models;

/// <summary>
/// Balancing, fail-over and the circuit breaker of an OpenAI-compatible provider with two endpoints, against in-test
/// stand-in servers that follow the OpenAI wire format: one healthy (<see cref="OpenAiProtocolTests"/>'s), and one that
/// refuses connections, answers 500, dies after the first token, or holds its answer back.
/// </summary>
public sealed class ProviderResilienceTests : IAsyncLifetime
{
    private static readonly ChatMessage[] Hello = [new(ChatRole.User, "Say hello")];

    private readonly List<IAsyncDisposable> _resources = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Stand_in_chat_fails_over_to_the_second_endpoint_when_the_first_refuses_connections()
    {
        var healthy = await HealthyAsync();
        var model = await ResolveAsync([new Uri($"http://127.0.0.1:{RedisProcess.FreePort()}"), healthy.BaseUri]);

        var whole = await model.Client.GetResponseAsync(Hello, cancellationToken: Ct);
        var streamed = await model.Client.GetStreamingResponseAsync(Hello, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal("Hello there", whole.Text);
        Assert.Equal("Hello there", string.Concat(streamed.Select(u => u.Text)));
        Assert.Equal(2, Chats(healthy));
    }

    [Fact]
    public async Task Stand_in_stream_is_not_retried_on_another_endpoint_after_its_first_token()
    {
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dying = await StandInAsync(context => DieAfterFirstTokenAsync(context, firstSeen.Task));
        var healthy = await HealthyAsync();
        var model = await ResolveAsync([dying.BaseUri, healthy.BaseUri]);

        var received = new List<string>();
        try
        {
            await foreach (var update in model.Client.GetStreamingResponseAsync(Hello, cancellationToken: Ct))
            {
                received.Add(update.Text);
                firstSeen.TrySetResult();
            }
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.IAssertionException)
        {
            // How a dropped stream surfaces is the HTTP stack's affair; what matters is that nothing was asked again.
        }

        // A retry on the healthy endpoint would have added its whole answer ("Hello there") after "Hel".
        Assert.Equal("Hel", string.Concat(received));
        Assert.Equal(1, Chats(dying));
        Assert.Equal(0, Chats(healthy));
    }

    [Fact]
    public async Task Stand_in_answering_500_opens_its_breaker_and_is_left_out_while_the_other_endpoint_answers()
    {
        var failing = await StandInAsync(context => Results.Problem("model crashed", statusCode: 500).ExecuteAsync(context));
        var healthy = await HealthyAsync();
        var model = await ResolveAsync([failing.BaseUri, healthy.BaseUri]);

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("Hello there", (await model.Client.GetResponseAsync(Hello, cancellationToken: Ct)).Text);
        }

        // Its listing of the models succeeded and the first chat (round robin began there) failed: half of two calls,
        // so its breaker opened and it was asked no more; the healthy endpoint answered every request.
        Assert.Equal(1, Chats(failing));
        Assert.Equal(6, Chats(healthy));
    }

    [Fact]
    public async Task Stand_in_with_one_endpoint_answering_500_is_refused_without_a_call_once_its_breaker_is_open()
    {
        var failing = await StandInAsync(context => Results.Problem("model crashed", statusCode: 503).ExecuteAsync(context));
        var model = await ResolveAsync([failing.BaseUri]);

        for (var i = 0; i < 3; i++)
        {
            var down = await Assert.ThrowsAsync<DependencyUnavailableException>(() => model.Client.GetResponseAsync(Hello, cancellationToken: Ct));
            Assert.Contains(failing.BaseUri.Authority, down.Message);
        }

        // The listing succeeded, the first chat failed (half of two calls): the next two were refused without a call.
        Assert.Equal(1, Chats(failing));
        Assert.Single(failing.Requests, r => r.Path == "/v1/models");
    }

    [Fact]
    public async Task Stand_in_answering_slowly_times_out_without_opening_the_breaker()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = await StandInAsync(async context =>
        {
            await release.Task.WaitAsync(context.RequestAborted);
            await OpenAiProtocolTests.CompleteAsync(context);
        });
        var model = await ResolveAsync([slow.BaseUri], generationTimeout: "00:00:01");

        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<DependencyTimeoutException>(() => model.Client.GetResponseAsync(Hello, cancellationToken: Ct));
        }
        release.SetResult();

        // Three answers that took too long are no reason to stop calling the server: the next call reaches it.
        Assert.Equal("Hello there", (await model.Client.GetResponseAsync(Hello, cancellationToken: Ct)).Text);
        Assert.Equal(4, Chats(slow));
    }

    /// <summary>An OpenAI-compatible stand-in that lists the models and answers chats with <paramref name="chat"/>.</summary>
    private async Task<StandInServer> StandInAsync(RequestDelegate chat)
    {
        var server = await StandInServer.StartAsync(app =>
        {
            app.MapGet("/v1/models", () => Results.Text(OpenAiProtocolTests.Models, "application/json"));
            app.MapPost("/v1/chat/completions", chat);
        });
        _resources.Add(server);
        return server;
    }

    private Task<StandInServer> HealthyAsync() => StandInAsync(OpenAiProtocolTests.CompleteAsync);

    /// <summary>
    /// Streams the first chunk of an answer and, once the client has it, drops the connection (dropped at once, the
    /// reset could discard the chunk unread: then no token would have been streamed, and a retry would be right).
    /// </summary>
    private static async Task DieAfterFirstTokenAsync(HttpContext context, Task firstSeen)
    {
        const string chunk = """{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1746000000,"model":"plain","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}""";
        await StandInServer.StreamAsync(context.Response, "text/event-stream", [$"data: {chunk}\n\n"]);
        await firstSeen.WaitAsync(context.RequestAborted);
        context.Abort();
    }

    private async Task<ChatModel> ResolveAsync(Uri[] endpoints, string generationTimeout = "00:10:00")
    {
        var settings = new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "pool",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            // Long enough that no breaker half-opens during a test.
            ["Agentry:Llm:BreakDuration"] = "00:30:00",
            ["Agentry:Llm:GenerationTimeout"] = generationTimeout,
        };
        for (var i = 0; i < endpoints.Length; i++)
        {
            settings[$"Agentry:Llm:Providers:0:Endpoints:{i}"] = new Uri(endpoints[i], "/v1").ToString();
        }
        var app = AgentryApp.Sqlite(settings);
        _resources.Add(app);
        return await app.Services.GetRequiredService<ModelCatalog>().ResolveAsync("pool/plain", TestCaller.Instance, Ct)
            ?? throw new Xunit.Sdk.XunitException("pool/plain did not resolve");
    }

    private static int Chats(StandInServer server) => server.Requests.Count(r => r.Method == "POST" && r.Path == "/v1/chat/completions");

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var resource in Enumerable.Reverse(_resources))
        {
            await resource.DisposeAsync();
        }
    }
}
