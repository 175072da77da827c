using System.Runtime.CompilerServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Sampling;
using LLama.Transformers;
using Microsoft.Extensions.AI;

namespace Agentry.Models;

/// <summary>
/// Chat with a GGUF model in-process through LLamaSharp. The weights are shared; every request gets an executor and
/// a llama.cpp context of its own (a <see cref="StatelessExecutor"/> is not safe for concurrent use), so requests
/// run side by side. Token usage is counted exactly: the prompt's tokens and every token sampled.
/// </summary>
internal sealed class LlamaCppChatClient(LLamaWeights weights, ModelParams contextParams, string modelName) : IChatClient
{
    /// <summary>The plain-text turn markers used when the model brings no chat template; generation stops at the next one.</summary>
    private static readonly string[] TurnMarkers = ["User:", "Assistant:", "System:"];

    private readonly ChatClientMetadata _metadata = new("llama.cpp", defaultModelId: modelName);
    private readonly bool _hasTemplate = weights.Metadata.ContainsKey("tokenizer.chat_template");

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The executor stops quietly on a cancelled token, yielding nothing: a cancelled request must end as cancelled.
        cancellationToken.ThrowIfCancellationRequested();
        var prompt = Prompt(messages);
        var promptTokens = weights.Tokenize(prompt, add_bos: true, special: true, Encoding.UTF8).Length;
        var window = (int)(contextParams.ContextSize ?? (uint)weights.ContextSize);
        if (promptTokens >= window)
        {
            throw new ArgumentException($"The prompt is {promptTokens} tokens; model {modelName} has a context window of {window}.", nameof(messages));
        }
        // Without a limit, stop where the window ends rather than let the executor shift the context and go on.
        var maxTokens = Math.Min(options?.MaxOutputTokens ?? int.MaxValue, window - promptTokens);
        var executor = new StatelessExecutor(weights, contextParams);
        var inference = new InferenceParams
        {
            MaxTokens = maxTokens,
            AntiPrompts = [.. options?.StopSequences ?? [], .. _hasTemplate ? [] : TurnMarkers],
            SamplingPipeline = Sampling(options),
        };

        var sampled = new Counter();
        var tokens = sampled.Count(executor.InferAsync(prompt, inference, cancellationToken));
        var text = _hasTemplate ? tokens : new LLamaTransforms.KeywordTextOutputStreamTransform(TurnMarkers).TransformAsync(tokens);
        var responseId = Guid.CreateVersion7().ToString("N");
        await foreach (var piece in text.WithCancellation(cancellationToken))
        {
            if (piece.Length > 0)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ResponseId = responseId, MessageId = responseId, ModelId = modelName };
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = responseId,
            MessageId = responseId,
            ModelId = modelName,
            FinishReason = sampled.Value >= maxTokens ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails
            {
                InputTokenCount = promptTokens,
                OutputTokenCount = sampled.Value,
                TotalTokenCount = promptTokens + sampled.Value,
            })],
        };
    }

    /// <summary>The conversation as the model expects it: through its own chat template when it has one, else as plain turns.</summary>
    private string Prompt(IEnumerable<ChatMessage> messages)
    {
        var history = new ChatHistory();
        foreach (var message in messages)
        {
            var role = message.Role == ChatRole.System ? AuthorRole.System
                : message.Role == ChatRole.Assistant ? AuthorRole.Assistant
                : AuthorRole.User;
            history.AddMessage(role, message.Text);
        }
        return _hasTemplate
            ? new PromptTemplateTransformer(weights, withAssistant: true).HistoryToText(history)
            : new LLamaTransforms.DefaultHistoryTransform().HistoryToText(history) + "Assistant: ";
    }

    /// <summary>llama.cpp's sampling chain with the request's settings; temperature 0 is greedy (deterministic).</summary>
    private static DefaultSamplingPipeline Sampling(ChatOptions? options)
    {
        var pipeline = new DefaultSamplingPipeline();
        return new DefaultSamplingPipeline
        {
            Temperature = options?.Temperature ?? pipeline.Temperature,
            TopP = options?.TopP ?? pipeline.TopP,
            TopK = options?.TopK ?? pipeline.TopK,
            FrequencyPenalty = options?.FrequencyPenalty ?? pipeline.FrequencyPenalty,
            PresencePenalty = options?.PresencePenalty ?? pipeline.PresencePenalty,
            Seed = options?.Seed is { } seed ? unchecked((uint)seed) : pipeline.Seed,
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        // The weights belong to LlamaCppModels; each request's executor and context are gone when it ends.
    }

    /// <summary>Counts the tokens the executor yields (one per sampled token) on their way to the text transform.</summary>
    private sealed class Counter
    {
        public int Value;

        public async IAsyncEnumerable<string> Count(IAsyncEnumerable<string> tokens)
        {
            await foreach (var token in tokens)
            {
                Value++;
                yield return token;
            }
        }
    }
}
