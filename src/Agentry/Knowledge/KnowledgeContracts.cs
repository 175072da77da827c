using System.ComponentModel.DataAnnotations;

namespace Agentry.Knowledge;

public sealed record CreateCollectionRequest
{
    [Required, StringLength(KnowledgeCollection.NameMaxLength, MinimumLength = 1)]
    public string Name { get; init; } = "";

    [StringLength(KnowledgeCollection.DescriptionMaxLength)]
    public string? Description { get; init; }

    /// <summary>The embedding model's id as <c>/api/v1/models</c> lists it; the configured one when left out.</summary>
    public string? EmbeddingModel { get; init; }

    /// <summary>The model's vector length; checked against the model when sent.</summary>
    public int? Dimensions { get; init; }

    [Range(16, 8_192)]
    public int? ChunkTokens { get; init; }

    [Range(0, 4_096)]
    public int? ChunkOverlap { get; init; }

    /// <summary>Where its vectors live; <c>embedded</c> when left out. A server's provider must be configured here.</summary>
    [AllowedValues(null, VectorProviders.Embedded, VectorProviders.Chroma, VectorProviders.Qdrant,
        ErrorMessage = "The vector provider must be one of: embedded, chroma, qdrant.")]
    public string? VectorProvider { get; init; }
}

/// <summary>A change; a field left out keeps its value. A new embedding model re-embeds every document in the background.</summary>
public sealed record UpdateCollectionRequest
{
    [StringLength(KnowledgeCollection.NameMaxLength, MinimumLength = 1)]
    public string? Name { get; init; }

    [StringLength(KnowledgeCollection.DescriptionMaxLength)]
    public string? Description { get; init; }

    public string? EmbeddingModel { get; init; }

    public int? Dimensions { get; init; }

    [Range(16, 8_192)]
    public int? ChunkTokens { get; init; }

    [Range(0, 4_096)]
    public int? ChunkOverlap { get; init; }
}

public sealed record CollectionResponse(
    Guid Id, string Name, string? Description, string EmbeddingModel, int Dimensions, int ChunkTokens, int ChunkOverlap,
    string VectorProvider, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>A document to fetch from a URL (through the egress guard) instead of an upload.</summary>
public sealed record AddDocumentFromUrlRequest
{
    [Required, StringLength(2_000)]
    public string Url { get; init; } = "";

    /// <summary>The format, when the server's content type does not tell it.</summary>
    public string? Format { get; init; }
}

/// <summary>One step of the ingestion: <c>pending</c>, <c>running</c>, <c>done</c> or <c>failed</c>.</summary>
public sealed record IngestionStepResponse(string Name, string Status);

public sealed record DocumentResponse(
    Guid Id, Guid CollectionId, string Name, string? SourceUrl, string Format, string Sha256, long SizeBytes, string Status,
    IReadOnlyList<IngestionStepResponse> Steps, string? Error, int ChunkCount, Guid? TaskId, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>The answer to an added document: the document (the existing one when its content was there already) and whether it was new.</summary>
public sealed record AddDocumentResponse(DocumentResponse Document, bool Duplicate);

public sealed record SearchRequest
{
    [Required, StringLength(4_000, MinimumLength = 1)]
    public string Query { get; init; } = "";

    public int? TopK { get; init; }

    [AllowedValues(null, SearchModes.Vector, SearchModes.Keyword, SearchModes.Hybrid, ErrorMessage = "The mode must be one of: vector, keyword, hybrid.")]
    public string? Mode { get; init; }

    public SearchFilter? Filter { get; init; }
}

/// <summary>Only chunks that match every field given.</summary>
public sealed record SearchFilter
{
    [MaxLength(100)]
    public IReadOnlyList<Guid>? DocumentIds { get; init; }

    /// <summary>Chunks whose heading path contains this text (case-sensitive).</summary>
    [StringLength(200)]
    public string? HeadingContains { get; init; }
}

public static class SearchModes
{
    public const string Vector = "vector";
    public const string Keyword = "keyword";
    public const string Hybrid = "hybrid";
}

public sealed record SearchHit(
    Guid ChunkId, Guid DocumentId, string DocumentName, int Position, string? HeadingPath, int? Page, string Text, double Score);

public sealed record SearchResponse(string Mode, IReadOnlyList<SearchHit> Results);

internal static class KnowledgeMapping
{
    public static CollectionResponse ToResponse(this KnowledgeCollection c) => new(
        c.Id, c.Name, c.Description, c.EmbeddingModel, c.Dimensions, c.ChunkTokens, c.ChunkOverlap, c.VectorProvider, c.CreatedAt, c.UpdatedAt);

    public static DocumentResponse ToResponse(this KnowledgeDocument d) => new(
        d.Id, d.CollectionId, d.Name, d.SourceUrl, d.Format, d.Sha256, d.SizeBytes, d.Status, Steps(d), d.Error, d.ChunkCount, d.TaskId,
        d.CreatedAt, d.UpdatedAt);

    /// <summary>Done up to <see cref="KnowledgeDocument.StepsDone"/>; the next one running or failed; the rest pending.</summary>
    private static IReadOnlyList<IngestionStepResponse> Steps(KnowledgeDocument d) =>
        IngestionSteps.All.Select((name, i) => new IngestionStepResponse(name, i < d.StepsDone ? "done"
            : i > d.StepsDone ? "pending"
            : d.FailedStep == name ? "failed"
            : d.Status == DocumentStatuses.Processing ? "running"
            : "pending")).ToList();
}
