using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Workspaces;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Chat;

/// <summary>
/// The tiny GGUF model three ways: <c>local/tiny</c> as configured; <c>spy/tiny</c>, the same model recording every
/// prompt it is sent; <c>slow/tiny</c>, the same model handing out each token 80 ms late, so a reply is still being
/// generated while a test disconnects or cancels. A provider <c>down</c> is an Ollama server that is not there.
/// </summary>
public static class ChatSettings
{
    public static readonly TimeSpan SlowTokenDelay = TimeSpan.FromMilliseconds(80);

    /// <summary>Short replies, so that several exchanges fit the tiny model's 256-token window.</summary>
    public const int MaxReplyTokens = 24;

    public static IReadOnlyDictionary<string, string?> For(string model) => TinyModelFixture.LlamaCppSettings(("local", model)).With(new Dictionary<string, string?>
    {
        ["Agentry:Llm:Providers:1:Name"] = "down",
        ["Agentry:Llm:Providers:1:Kind"] = "ollama",
        ["Agentry:Llm:Providers:1:Endpoints:0"] = $"http://127.0.0.1:{RedisProcess.FreePort()}",
        ["Agentry:Chat:MaxMessageLength"] = "2000",
        ["Agentry:Chat:MaxReplyTokens"] = MaxReplyTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Agentry:Chat:ReplyLease"] = "00:00:02",
    });

    public static Action<IServiceCollection> Services(string model, PromptRecorder recorder) => services =>
    {
        services.AddSingleton<IModelProvider>(sp => new TestModelProvider("spy", model, sp.GetRequiredService<LlamaCppModels>(), TimeSpan.Zero, recorder));
        services.AddSingleton<IModelProvider>(sp => new TestModelProvider("slow", model, sp.GetRequiredService<LlamaCppModels>(), SlowTokenDelay, null));
    };

    public static string NewModelFile()
    {
        var path = Path.Combine(TempFiles.Directory(), "tiny.gguf");
        TinyGguf.Write(path);
        return path;
    }
}

/// <summary>Every prompt sent to <c>spy/tiny</c>, in order.</summary>
public sealed class PromptRecorder
{
    public ConcurrentQueue<List<ChatMessage>> Prompts { get; } = new();
}

/// <summary>A llamacpp provider under another name whose chats are recorded or slowed down; the model and its tokenizer are real.</summary>
internal sealed class TestModelProvider(string name, string path, LlamaCppModels models, TimeSpan delay, PromptRecorder? recorder) : IModelProvider
{
    private readonly LlamaCppModelProvider _inner = new(new ModelProviderOptions { Name = name, Kind = ModelProviderOptions.LlamaCpp, Path = path, Threads = 1 }, models);

    public ModelProviderOptions Options => _inner.Options;

    public Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct) => _inner.ListAsync(ct);

    public async ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct) =>
        new Wrapped(await _inner.ChatClientAsync(model, ct), delay, recorder);

    private sealed class Wrapped(IChatClient inner, TimeSpan delay, PromptRecorder? recorder) : DelegatingChatClient(inner)
    {
        public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            recorder?.Prompts.Enqueue(list);
            await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken))
            {
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, cancellationToken);
                }
                yield return update;
            }
        }
    }
}

public sealed class SqliteChatFixture : SqliteFixture
{
    private readonly string _model = ChatSettings.NewModelFile();

    public PromptRecorder Recorder { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => ChatSettings.For(_model);

    protected override Action<IServiceCollection> Services => ChatSettings.Services(_model, Recorder);
}

public sealed class PostgresChatFixture : PostgresFixture
{
    private readonly string _model = ChatSettings.NewModelFile();

    public PromptRecorder Recorder { get; } = new();

    protected override IReadOnlyDictionary<string, string?> Extra => ChatSettings.For(_model);

    protected override Action<IServiceCollection> Services => ChatSettings.Services(_model, Recorder);
}

/// <summary>One Server-Sent Event as read off the wire.</summary>
public sealed record SseEvent(long Id, string Type, JsonElement Data);

public static class Sse
{
    public static HttpRequestMessage Request(HttpMethod method, string url, object? body = null, string? lastEventId = null)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (body is not null)
        {
            request.Content = HttpAssertions.Json(body);
        }
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        return request;
    }

    /// <summary>Reads events until the stream ends or <paramref name="stopAfter"/> says to stop.</summary>
    public static async Task<List<SseEvent>> ReadAsync(HttpResponseMessage response, Func<SseEvent, bool>? stopAfter = null)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<SseEvent>();
        (long Id, string? Type, string? Data) current = (0, null, null);
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                current.Id = long.Parse(line[4..]);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                current.Type = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                current.Data = line[6..];
            }
            else if (line.Length == 0 && current.Type is not null)
            {
                var e = new SseEvent(current.Id, current.Type, JsonDocument.Parse(current.Data!).RootElement.GetProperty("data").Clone());
                events.Add(e);
                current = (0, null, null);
                if (stopAfter?.Invoke(e) == true)
                {
                    break;
                }
            }
        }
        return events;
    }

    public static string Text(IEnumerable<SseEvent> events) =>
        string.Concat(events.Where(e => e.Type == "reply.delta").Select(e => e.Data.GetProperty("text").GetString()));
}

public static class WorkspaceClients
{
    /// <summary>A new workspace and a client of a user with <paramref name="role"/> in it, acting in it.</summary>
    public static async Task<(Guid Workspace, HttpClient Client)> NewAsync(AgentryApp app, string role = "member")
    {
        var workspace = await app.CreateWorkspaceAsync();
        return (workspace, await InAsync(app, workspace, role));
    }

    public static async Task<HttpClient> InAsync(AgentryApp app, Guid workspace, string role)
    {
        var client = await app.UserClientAsync(workspace, role);
        client.DefaultRequestHeaders.Add(CurrentWorkspace.HeaderName, workspace.ToString());
        return client;
    }
}
