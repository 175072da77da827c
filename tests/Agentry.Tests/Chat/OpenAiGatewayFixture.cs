using System.Text.Json;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;

namespace Agentry.Tests.Chat;

/// <summary>
/// Two Agentry instances: <see cref="Upstream"/> runs the tiny GGUF model in-process (<c>local/tiny</c>) and serves it at
/// <c>/v1</c> on a real port; <see cref="Gateway"/>'s OpenAI-compatible provider <c>remote</c> points at that <c>/v1</c>
/// with an upstream API key of scope <c>chat</c>, so it offers <c>remote/local/tiny</c>; its embedding provider is the upstream's
/// <c>/v1/embeddings</c> (MiniLM in-process there), as <c>openai/minilm/all-minilm-l6-v2</c>.
/// </summary>
public sealed class OpenAiGatewayFixture : IAsyncLifetime
{
    public AgentryApp Upstream { get; private set; } = null!;

    public AgentryApp Gateway { get; private set; } = null!;

    /// <summary>An upstream client with a key of scope <c>chat</c>, as an OpenAI client library would call.</summary>
    public HttpClient Chat { get; private set; } = null!;

    public HttpClient UpstreamAdmin { get; private set; } = null!;

    public Guid Workspace { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var model = Path.Combine(TempFiles.Directory(), "tiny.gguf");
        TinyGguf.Write(model);
        Upstream = AgentryApp.Sqlite(TinyModelFixture.LlamaCppSettings(("local", model)), kestrel: true);
        UpstreamAdmin = await Upstream.AdminClientAsync();
        Workspace = await Upstream.CreateWorkspaceAsync();
        var key = await AgentryApp.CreateApiKeyAsync(UpstreamAdmin, Workspace, ApiKeyScopes.Chat);
        Chat = Upstream.KeyClient(key);
        Gateway = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "remote",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = new Uri(Upstream.BaseUri, "/v1").ToString(),
            ["Agentry:Llm:Providers:0:ApiKey"] = key,
            ["Agentry:Embeddings:Provider"] = "openai",
            ["Agentry:Embeddings:Model"] = "minilm/all-minilm-l6-v2",
            ["Agentry:Embeddings:Endpoints:0"] = new Uri(Upstream.BaseUri, "/v1").ToString(),
            ["Agentry:Embeddings:ApiKey"] = key,
        });
    }

    /// <summary>The <c>data:</c> payloads of a Server-Sent Events body, in order.</summary>
    public static List<string> DataLines(string body) =>
        body.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..].TrimEnd('\r')).ToList();

    /// <summary>The JSON chunks of a streamed answer, after checking it ends with <c>data: [DONE]</c>.</summary>
    public static List<JsonElement> Chunks(string body)
    {
        var data = DataLines(body);
        Assert.Equal("[DONE]", data[^1]);
        return data[..^1].Select(d => JsonDocument.Parse(d).RootElement).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Upstream.DisposeAsync();
    }
}
