namespace Agentry.Models;

/// <summary>
/// A model one provider offers. <c>id</c> is <c>{provider}/{name}</c>, the name as the provider knows it;
/// <c>contextLength</c> is its context window in tokens (null when the server does not say);
/// <c>supportsTools</c> says whether it can call tools (null when the server does not say); <c>type</c> is <c>chat</c> or
/// <c>embedding</c>; <c>dimensions</c> is an embedding model's vector length (null for chat models, and for a remote
/// embedding model until it first answered unless configured).
/// </summary>
public sealed record ModelResponse(
    string Id, string Provider, string Name, int? ContextLength, bool? SupportsTools, string Type = ModelTypes.Chat, int? Dimensions = null);

/// <summary>What a model does: <c>chat</c> (<c>/v1/chat/completions</c>, conversations, agents) or <c>embedding</c> (<c>/v1/embeddings</c>).</summary>
public static class ModelTypes
{
    public const string Chat = "chat";
    public const string Embedding = "embedding";
}

/// <summary>A configured provider as the listing found it: <c>status</c> is <c>available</c> or <c>unavailable</c> (then <c>error</c> says why).</summary>
public sealed record ModelProviderResponse(string Name, string Kind, string Status, string? Error, int ModelCount);

/// <summary>Every configured provider's models; a provider that is down is listed with its error and no models.</summary>
public sealed record ModelListResponse(IReadOnlyList<ModelResponse> Items, IReadOnlyList<ModelProviderResponse> Providers);

public static class ModelProviderStatuses
{
    public const string Available = "available";
    public const string Unavailable = "unavailable";
}
