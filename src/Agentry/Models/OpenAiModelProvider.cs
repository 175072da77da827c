using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Agentry.Models;

/// <summary>
/// Any OpenAI-compatible server (vLLM, LocalAI, llama.cpp's server, LM Studio, OpenAI itself), through the OpenAI SDK and
/// Microsoft.Extensions.AI.OpenAI: models from <c>/models</c>, chat through <c>/chat/completions</c>.
/// </summary>
internal sealed class OpenAiModelProvider(ModelProviderOptions options, ModelEndpointPool pool, ModelOptions models, IHttpClientFactory http) : IModelProvider
{
    public ModelProviderOptions Options => options;

    public Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct) =>
        pool.FirstAnsweringAsync((endpoint, token) => ListAsync(Client(endpoint), token), ct);

    private async Task<IReadOnlyList<ModelResponse>> ListAsync(OpenAIClient client, CancellationToken ct)
    {
        var result = await client.GetOpenAIModelClient().GetModelsAsync(ct);
        // The SDK models only the standard fields; servers that know a model's window say so in fields of their own.
        using var raw = JsonDocument.Parse(result.GetRawResponse().Content);
        List<JsonElement> listed = raw.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array
            ? [.. data.EnumerateArray().Where(m => m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)]
            : [];
        var windows = listed.GroupBy(m => m.GetProperty("id").GetString()!).ToDictionary(g => g.Key, g => ContextLength(g.First()));
        var embedding = listed.Where(IsEmbeddingModel).Select(m => m.GetProperty("id").GetString()).ToHashSet();
        return result.Value
            .Where(m => !embedding.Contains(m.Id))
            .Select(m => new ModelResponse(ModelIds.Of(options.Name, m.Id), options.Name, m.Id, windows.GetValueOrDefault(m.Id), null))
            .ToList();
    }

    public ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct) =>
        ValueTask.FromResult<IChatClient>(new BalancedChatClient(
            pool, model, endpoint => Client(endpoint).GetChatClient(model.Name).AsIChatClient(), models.GenerationTimeout));

    private OpenAIClient Client(string endpoint) => Client(endpoint, options.ApiKey, http.CreateClient(ModelExtensions.HttpClientName));

    /// <summary>An OpenAI SDK client for one endpoint, without the SDK's own retries or timeout (both are decided above it).</summary>
    internal static OpenAIClient Client(string endpoint, string? apiKey, HttpClient http)
    {
        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = new Uri(endpoint),
            Transport = new HttpClientPipelineTransport(http),
            // Retries and fail-over are decided above the client (a retry after the first token would repeat it).
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = Timeout.InfiniteTimeSpan,
        };
        // Local servers often need no key; the SDK insists on one, and such servers ignore what it sends.
        return new OpenAIClient(new ApiKeyCredential(apiKey ?? "unused"), clientOptions);
    }

    /// <summary>
    /// Servers that mark a model's kind (Agentry's own <c>/v1</c> with <c>type</c> <c>embedding</c>, LM Studio with
    /// <c>embeddings</c>) list embedding models too; those cannot chat, so they are not chat models.
    /// </summary>
    private static bool IsEmbeddingModel(JsonElement model) =>
        model.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
        && type.GetString() is ModelTypes.Embedding or "embeddings";

    /// <summary>vLLM reports <c>max_model_len</c>; LM Studio, OpenRouter and others <c>context_length</c>.</summary>
    private static int? ContextLength(JsonElement model)
    {
        foreach (var name in (string[])["max_model_len", "context_length"])
        {
            if (model.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var length))
            {
                return length;
            }
        }
        return null;
    }
}
