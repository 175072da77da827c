using System.ComponentModel.DataAnnotations;
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
}

internal sealed class KnowledgeOptionsValidator : IValidateOptions<KnowledgeOptions>
{
    public ValidateOptionsResult Validate(string? name, KnowledgeOptions o) =>
        o.DefaultChunkOverlap >= o.DefaultChunkTokens
            ? ValidateOptionsResult.Fail("Agentry:Knowledge:DefaultChunkOverlap must be less than Agentry:Knowledge:DefaultChunkTokens.")
            : ValidateOptionsResult.Success;
}
