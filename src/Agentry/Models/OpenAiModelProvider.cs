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
internal sealed class OpenAiModelProvider(ModelProviderOptions options, ModelOptions models, IHttpClientFactory http, ILogger logger) : IModelProvider
{
    private readonly ModelEndpointPool _pool = new(options, models, logger);

    public ModelProviderOptions Options => options;

    public Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct) =>
        _pool.FirstAnsweringAsync((endpoint, token) => ListAsync(Client(endpoint), token), ct);

    private async Task<IReadOnlyList<ModelResponse>> ListAsync(OpenAIClient client, CancellationToken ct)
    {
        var result = await client.GetOpenAIModelClient().GetModelsAsync(ct);
        // The SDK models only the standard fields; servers that know a model's window say so in fields of their own.
        using var raw = JsonDocument.Parse(result.GetRawResponse().Content);
        var windows = raw.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array
            ? data.EnumerateArray().Where(m => m.TryGetProperty("id", out _))
                .GroupBy(m => m.GetProperty("id").GetString() ?? "")
                .ToDictionary(g => g.Key, g => ContextLength(g.First()))
            : [];
        return result.Value
            .Select(m => new ModelResponse(ModelIds.Of(options.Name, m.Id), options.Name, m.Id, windows.GetValueOrDefault(m.Id), null))
            .ToList();
    }

    public ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct) =>
        ValueTask.FromResult<IChatClient>(new BalancedChatClient(
            options.Name, _pool, _pool.Endpoints.Select(e => Client(e.Url).GetChatClient(model.Name).AsIChatClient()).ToList(), models.GenerationTimeout));

    private OpenAIClient Client(string endpoint)
    {
        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = new Uri(endpoint),
            Transport = new HttpClientPipelineTransport(http.CreateClient(ModelExtensions.HttpClientName)),
            // Retries and fail-over are decided above the client (a retry after the first token would repeat it).
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = Timeout.InfiniteTimeSpan,
        };
        // Local servers often need no key; the SDK insists on one, and such servers ignore what it sends.
        return new OpenAIClient(new ApiKeyCredential(options.ApiKey ?? "unused"), clientOptions);
    }

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
