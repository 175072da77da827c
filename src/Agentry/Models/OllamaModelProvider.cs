using System.Text.Json;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models;

namespace Agentry.Models;

/// <summary>
/// An Ollama server, through OllamaSharp: models from <c>/api/tags</c>, each one's context length and capabilities
/// from <c>/api/show</c>, chat through OllamaSharp's <see cref="IChatClient"/> with <c>num_ctx</c> set to the model's
/// context length (Ollama otherwise runs every model with its own small default and silently cuts the history).
/// </summary>
internal sealed class OllamaModelProvider(ModelProviderOptions options, ModelEndpointPool pool, ModelOptions models, IHttpClientFactory http) : IModelProvider
{
    public ModelProviderOptions Options => options;

    public Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct) =>
        pool.FirstAnsweringAsync((endpoint, token) => ListAsync(Client(endpoint), token), ct);

    private async Task<IReadOnlyList<ModelResponse>> ListAsync(OllamaApiClient ollama, CancellationToken ct)
    {
        var models = await ollama.ListLocalModelsAsync(ct);
        var shown = await Task.WhenAll(models.Select(m => ollama.ShowModelAsync(m.Name, ct)));
        return models.Zip(shown, (model, show) => new ModelResponse(
                ModelIds.Of(options.Name, model.Name), options.Name, model.Name, ContextLength(show), SupportsTools(show)))
            .ToList();
    }

    public ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct) =>
        ValueTask.FromResult<IChatClient>(new BalancedChatClient(pool, model, endpoint => ChatClient(endpoint, model), models.GenerationTimeout));

    private IChatClient ChatClient(string endpoint, ModelResponse model) =>
        new ChatClientBuilder(Client(endpoint, model.Name))
            .ConfigureOptions(chat =>
            {
                chat.ModelId = model.Name;
                if (model.ContextLength is { } contextLength)
                {
                    chat.AddOllamaOption(OllamaOption.NumCtx, contextLength);
                }
            })
            .Build();

    private OllamaApiClient Client(string endpoint, string model = "") => Client(endpoint, model, http.CreateClient(ModelExtensions.HttpClientName));

    /// <summary>An OllamaSharp client for one endpoint; it is also Ollama's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.</summary>
    internal static OllamaApiClient Client(string endpoint, string model, HttpClient http)
    {
        http.BaseAddress = new Uri(endpoint);
        return new OllamaApiClient(http, model);
    }

    /// <summary>The model's own context length, from the GGUF metadata Ollama reports as <c>{architecture}.context_length</c>.</summary>
    private static int? ContextLength(ShowModelResponse show)
    {
        var info = show.Info?.ExtraInfo;
        if (info is null || show.Info?.Architecture is not { } architecture
            || !info.TryGetValue($"{architecture}.context_length", out var value) || value is not JsonElement { ValueKind: JsonValueKind.Number } number)
        {
            return null;
        }
        return number.TryGetInt32(out var length) ? length : null;
    }

    /// <summary>Ollama says which models can call tools in <c>capabilities</c>; older servers do not say (null).</summary>
    private static bool? SupportsTools(ShowModelResponse show) =>
        show.Capabilities is { } capabilities ? capabilities.Contains("tools") : null;
}
