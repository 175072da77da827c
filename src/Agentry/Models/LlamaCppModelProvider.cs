using LLama;
using LLama.Common;
using Microsoft.Extensions.AI;

namespace Agentry.Models;

/// <summary>A GGUF file run in-process by llama.cpp (LLamaSharp, CPU): one model, named after the file.</summary>
internal sealed class LlamaCppModelProvider(ModelProviderOptions options, LlamaCppModels models) : IModelProvider
{
    public ModelProviderOptions Options => options;

    public async Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct)
    {
        var weights = await models.GetAsync(options.Path!, ct);
        return [new ModelResponse(ModelIds.Of(options.Name, options.FileModelName), options.Name, options.FileModelName, Window(weights), false)];
    }

    public async ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct)
    {
        var weights = await models.GetAsync(options.Path!, ct);
        return new LlamaCppChatClient(weights, ContextParams(weights), model.Name);
    }

    /// <summary>The context window requests get: the configured size, or the one the model was trained with.</summary>
    private int Window(LLamaWeights weights) => options.ContextSize ?? weights.ContextSize;

    private ModelParams ContextParams(LLamaWeights weights)
    {
        var threads = options.Threads ?? Math.Max(1, Environment.ProcessorCount / 2);
        return new ModelParams(options.Path!) { ContextSize = (uint)Window(weights), Threads = threads, BatchThreads = threads, GpuLayerCount = 0 };
    }
}
