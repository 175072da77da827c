using Microsoft.Extensions.AI;

namespace Agentry.Models;

/// <summary>
/// One configured model provider: it lists the models it offers and gives a chat client for one of them.
/// The catalog adds caching, telemetry and model ids on top.
/// </summary>
internal interface IModelProvider
{
    ModelProviderOptions Options { get; }

    Task<IReadOnlyList<ModelResponse>> ListAsync(CancellationToken ct);

    /// <summary>A client that chats with <paramref name="model"/>, one of this provider's listed models.</summary>
    ValueTask<IChatClient> ChatClientAsync(ModelResponse model, CancellationToken ct);
}

internal static class ModelIds
{
    public static string Of(string provider, string name) => $"{provider}/{name}";

    /// <summary>Splits at the first '/': model names may contain more (Ollama's <c>hf.co/user/model:tag</c>).</summary>
    public static bool TrySplit(string id, out string provider, out string name)
    {
        var slash = id.IndexOf('/');
        (provider, name) = slash > 0 ? (id[..slash], id[(slash + 1)..]) : ("", "");
        return name.Length > 0;
    }
}
