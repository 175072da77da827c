using System.Text.Json;
using System.Text.Json.Serialization;

namespace Agentry.Chat;

// The wire format of OpenAI's Chat Completions and Models APIs, as OpenAI documents it (snake_case, and some fields
// present with null). The OpenAI SDK's own types are made for clients: a request's messages, model and stream flag
// cannot be read from them, so a server reads and writes these.

/// <summary><c>POST /v1/chat/completions</c>. <c>stop</c> is a string or up to 4 strings; <c>max_tokens</c> is the older name of <c>max_completion_tokens</c>.</summary>
public sealed record OpenAiChatRequest
{
    public string? Model { get; init; }

    public List<OpenAiMessage>? Messages { get; init; }

    public float? Temperature { get; init; }

    [JsonPropertyName("top_p")]
    public float? TopP { get; init; }

    [JsonPropertyName("max_tokens")]
    public int? MaxTokens { get; init; }

    [JsonPropertyName("max_completion_tokens")]
    public int? MaxCompletionTokens { get; init; }

    public JsonElement? Stop { get; init; }

    public long? Seed { get; init; }

    [JsonPropertyName("frequency_penalty")]
    public float? FrequencyPenalty { get; init; }

    [JsonPropertyName("presence_penalty")]
    public float? PresencePenalty { get; init; }

    /// <summary>How many answers to give; only 1 is offered.</summary>
    public int? N { get; init; }

    public bool Stream { get; init; }

    [JsonPropertyName("stream_options")]
    public OpenAiStreamOptions? StreamOptions { get; init; }

    /// <summary>The end user, as the caller names them (kept for the caller; Agentry knows its caller from the key).</summary>
    public string? User { get; init; }
}

/// <summary>One message: <c>role</c> <c>system</c>, <c>developer</c>, <c>user</c> or <c>assistant</c>; <c>content</c> a string or an array of <c>text</c> parts.</summary>
public sealed record OpenAiMessage(string? Role, JsonElement? Content, string? Name = null);

/// <summary>With <c>include_usage</c>, a last chunk before <c>[DONE]</c> carries the token usage (and no choices).</summary>
public sealed record OpenAiStreamOptions([property: JsonPropertyName("include_usage")] bool IncludeUsage);

/// <summary><c>GET /v1/models</c>: <c>object</c> is <c>list</c>.</summary>
public sealed record OpenAiModelList(string Object, IReadOnlyList<OpenAiModel> Data);

/// <summary>
/// A model: <c>id</c> is Agentry's model id (<c>{provider}/{name}</c>), <c>owned_by</c> its provider, <c>created</c> 0 (model
/// servers do not say when a model was made); <c>context_length</c> its window where known, as LM Studio and others report it;
/// <c>type</c> <c>chat</c> or <c>embedding</c> (an addition of Agentry's; clients that do not know it ignore it).
/// </summary>
public sealed record OpenAiModel(
    string Id,
    string Object,
    long Created,
    [property: JsonPropertyName("owned_by")] string OwnedBy,
    [property: JsonPropertyName("context_length")] int? ContextLength,
    string Type);

/// <summary>A whole answer: <c>object</c> is <c>chat.completion</c>, one choice.</summary>
public sealed record OpenAiChatCompletion(
    string Id, string Object, long Created, string Model, IReadOnlyList<OpenAiChoice> Choices, OpenAiUsage? Usage);

public sealed record OpenAiChoice(
    int Index,
    OpenAiAnswer Message,
    [property: JsonPropertyName("finish_reason"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

public sealed record OpenAiAnswer(string Role, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content);

public sealed record OpenAiUsage(
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("completion_tokens")] long CompletionTokens,
    [property: JsonPropertyName("total_tokens")] long TotalTokens);

/// <summary>One Server-Sent Event of a streamed answer: <c>object</c> is <c>chat.completion.chunk</c>; <c>usage</c> is null but in the usage chunk.</summary>
public sealed record OpenAiChunk(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<OpenAiChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] OpenAiUsage? Usage);

public sealed record OpenAiChunkChoice(
    int Index,
    OpenAiDelta Delta,
    [property: JsonPropertyName("finish_reason"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

/// <summary>What a chunk adds to the answer: the role in the first, text in those that carry some, nothing in the last.</summary>
public sealed record OpenAiDelta(string? Role, string? Content);

/// <summary>
/// <c>POST /v1/embeddings</c>: <c>input</c> is a string or an array of strings; <c>encoding_format</c> <c>float</c> (the
/// default) or <c>base64</c>; <c>dimensions</c> only as the model's own length (no model here can shorten its vectors).
/// </summary>
public sealed record OpenAiEmbeddingRequest
{
    public string? Model { get; init; }

    public JsonElement? Input { get; init; }

    [JsonPropertyName("encoding_format")]
    public string? EncodingFormat { get; init; }

    public int? Dimensions { get; init; }

    /// <summary>The end user, as the caller names them (kept for the caller; Agentry knows its caller from the key).</summary>
    public string? User { get; init; }
}

/// <summary>The vectors, one per input in the order given: <c>object</c> is <c>list</c>.</summary>
public sealed record OpenAiEmbeddingList(string Object, IReadOnlyList<OpenAiEmbedding> Data, string Model, OpenAiEmbeddingUsage Usage);

/// <summary>
/// One vector: <c>object</c> is <c>embedding</c>; <c>embedding</c> an array of numbers, or with <c>encoding_format</c>
/// <c>base64</c> a base64 string of its little-endian 32-bit floats.
/// </summary>
public sealed record OpenAiEmbedding(string Object, int Index, object Embedding);

public sealed record OpenAiEmbeddingUsage(
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("total_tokens")] long TotalTokens);

/// <summary>OpenAI's error envelope: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed record OpenAiErrorResponse(OpenAiError Error);

public sealed record OpenAiError(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
