using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

/// <summary>Knowledge bases. Section <c>Agentry:Knowledge</c>.</summary>
public sealed class KnowledgeOptions
{
    public const string SectionName = "Agentry:Knowledge";

    /// <summary>Where the embedded vector provider keeps one index file per collection.</summary>
    [Required(ErrorMessage = "Agentry:Knowledge:IndexDirectory must name a directory.")]
    public string IndexDirectory { get; set; } = "data/vectors";

    /// <summary>
    /// The embedded index's graph connectivity (HNSW M, links per node) for collections created from now on; kept in each
    /// index file, so an existing collection keeps the value it was built with. More links: better recall, more memory.
    /// </summary>
    [Range(4, 128, ErrorMessage = "Agentry:Knowledge:IndexConnectivity must be between 4 and 128.")]
    public int IndexConnectivity { get; set; } = 32;

    /// <summary>
    /// How many candidates a search of the embedded index keeps while walking the graph (HNSW ef), at least topK.
    /// Larger: better recall, slower searches.
    /// </summary>
    [Range(16, 4_096, ErrorMessage = "Agentry:Knowledge:IndexExpansionSearch must be between 16 and 4096.")]
    public int IndexExpansionSearch { get; set; } = 2_048;

    /// <summary>The largest document accepted (upload or fetched URL), in bytes; a larger one is answered 413.</summary>
    [Range(1_024, 1_073_741_824, ErrorMessage = "Agentry:Knowledge:MaxDocumentBytes must be between 1024 and 1073741824.")]
    public long MaxDocumentBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Chunk size and overlap, in the embedding model's tokens, for a collection that does not set them.</summary>
    [Range(16, 8_192, ErrorMessage = "Agentry:Knowledge:DefaultChunkTokens must be between 16 and 8192.")]
    public int DefaultChunkTokens { get; set; } = 200;

    [Range(0, 4_096, ErrorMessage = "Agentry:Knowledge:DefaultChunkOverlap must be between 0 and 4096.")]
    public int DefaultChunkOverlap { get; set; } = 30;

    /// <summary>How many times an ingestion is tried before its document stays <c>failed</c>.</summary>
    [Range(1, 100, ErrorMessage = "Agentry:Knowledge:MaxAttempts must be between 1 and 100.")]
    public int MaxAttempts { get; set; } = 5;

    /// <summary>The time one ingestion attempt may take.</summary>
    [Range(10, 86_400, ErrorMessage = "Agentry:Knowledge:TimeoutSeconds must be between 10 and 86400.")]
    public int TimeoutSeconds { get; set; } = 1_800;

    /// <summary>The most results one search returns.</summary>
    [Range(1, 1_000, ErrorMessage = "Agentry:Knowledge:MaxTopK must be between 1 and 1000.")]
    public int MaxTopK { get; set; } = 50;

    /// <summary>The ChromaDB server of the <c>chroma</c> vector provider (section <c>Agentry:Knowledge:Chroma</c>).</summary>
    public ChromaOptions Chroma { get; set; } = new();

    /// <summary>The Qdrant server of the <c>qdrant</c> vector provider (section <c>Agentry:Knowledge:Qdrant</c>).</summary>
    public QdrantOptions Qdrant { get; set; } = new();

    /// <summary>Whether collections may use <paramref name="provider"/> here: the embedded one always, a server's once its URL is set.</summary>
    public bool Serves(string provider) => provider switch
    {
        VectorProviders.Embedded => true,
        VectorProviders.Chroma => Chroma.Url is not null,
        VectorProviders.Qdrant => Qdrant.Url is not null,
        _ => false,
    };
}

/// <summary>A ChromaDB server (HTTP API v2). Unset <see cref="Url"/>: the <c>chroma</c> provider is off.</summary>
public sealed class ChromaOptions
{
    /// <summary>The server's base URL, e.g. <c>http://chroma:8000</c>.</summary>
    public string? Url { get; set; }

    /// <summary>The tenant and database holding Agentry's collections; both are created when missing.</summary>
    public string Tenant { get; set; } = "default_tenant";
    public string Database { get; set; } = "agentry";

    /// <summary>A token for a server with token authentication, sent in <see cref="TokenHeader"/>; never logged.</summary>
    public string? Token { get; set; }

    /// <summary><c>Authorization</c> (sent as <c>Bearer {token}</c>) or <c>X-Chroma-Token</c>, as the server's auth provider expects.</summary>
    public string TokenHeader { get; set; } = "Authorization";

    /// <summary>How long one call may take, connecting included.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>A Qdrant server (gRPC). Unset <see cref="Url"/>: the <c>qdrant</c> provider is off.</summary>
public sealed class QdrantOptions
{
    /// <summary>The server's gRPC URL, e.g. <c>http://qdrant:6334</c> (<c>https</c> for TLS).</summary>
    public string? Url { get; set; }

    /// <summary>The server's API key, if it has one; never logged.</summary>
    public string? ApiKey { get; set; }

    /// <summary>How long one call may take (the gRPC deadline).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
}

internal sealed partial class KnowledgeOptionsValidator : IValidateOptions<KnowledgeOptions>
{
    private const string Section = KnowledgeOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, KnowledgeOptions o)
    {
        var errors = new List<string>();
        if (o.DefaultChunkOverlap >= o.DefaultChunkTokens)
        {
            errors.Add($"{Section}:DefaultChunkOverlap must be less than {Section}:DefaultChunkTokens.");
        }
        // A provider's settings matter only when it is switched on by its URL.
        if (o.Chroma.Url is { } chroma)
        {
            CheckUrl(errors, "Chroma", chroma);
            CheckTimeouts(errors, "Chroma", o.Chroma.Timeout, o.Chroma.ConnectTimeout);
            foreach (var (key, value) in new[] { ("Tenant", o.Chroma.Tenant), ("Database", o.Chroma.Database) })
            {
                if (value is null || !ChromaName().IsMatch(value))
                {
                    errors.Add($"{Section}:Chroma:{key} must be 3-63 characters of letters, digits, '.', '_' or '-', starting and ending with a letter or digit.");
                }
            }
            if (o.Chroma.TokenHeader is not ("Authorization" or "X-Chroma-Token"))
            {
                errors.Add($"{Section}:Chroma:TokenHeader must be Authorization or X-Chroma-Token.");
            }
        }
        if (o.Qdrant.Url is { } qdrant)
        {
            CheckUrl(errors, "Qdrant", qdrant);
            CheckTimeouts(errors, "Qdrant", o.Qdrant.Timeout, null);
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckUrl(List<string> errors, string provider, string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0)
        {
            errors.Add($"{Section}:{provider}:Url must be an absolute http or https URL without credentials in it.");
        }
    }

    private static void CheckTimeouts(List<string> errors, string provider, TimeSpan timeout, TimeSpan? connect)
    {
        if (timeout < TimeSpan.FromSeconds(1) || timeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Section}:{provider}:Timeout must be between 00:00:01 and 00:10:00.");
        }
        if (connect is { } c && (c < TimeSpan.FromMilliseconds(100) || c > timeout))
        {
            errors.Add($"{Section}:{provider}:ConnectTimeout must be between 00:00:00.1 and {Section}:{provider}:Timeout.");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")]
    private static partial Regex ChromaName();
}
