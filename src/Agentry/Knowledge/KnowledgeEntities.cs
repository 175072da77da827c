using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Knowledge;

/// <summary>
/// A knowledge base: documents, their chunks and the chunks' vectors. It pins the embedding model and the length of its
/// vectors (vectors of two models cannot be searched together), how documents are cut into chunks, and the vector provider.
/// </summary>
public sealed class KnowledgeCollection : INamedRow
{
    public const int NameMaxLength = 100;
    public const int DescriptionMaxLength = 2_000;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public required string Name { get; set; }
    public string? Description { get; set; }

    /// <summary>The embedding model's id, <c>{provider}/{model}</c>, as the catalog names it.</summary>
    public required string EmbeddingModel { get; set; }
    public int Dimensions { get; set; }

    /// <summary>The most tokens (of the embedding model's tokenizer) in one chunk, and how many a chunk repeats from the one before.</summary>
    public int ChunkTokens { get; set; }
    public int ChunkOverlap { get; set; }

    /// <summary>One of <see cref="VectorProviders"/>.</summary>
    public required string VectorProvider { get; init; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public Guid? CreatedBy { get; init; }
}

/// <summary>
/// One document of a collection and the state of its ingestion. The original bytes are kept, so any node can run (or
/// resume) any step; each step's output is kept too (the extracted text here, chunks and vectors in their rows), so a
/// retried ingestion starts at the step that failed.
/// </summary>
public sealed class KnowledgeDocument : ICreatedRow
{
    public const int NameMaxLength = 500;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public Guid CollectionId { get; init; }

    /// <summary>The file name, or the URL it was fetched from.</summary>
    public required string Name { get; init; }
    public string? SourceUrl { get; init; }

    /// <summary>One of <see cref="DocumentFormats"/>.</summary>
    public required string Format { get; init; }

    /// <summary>SHA-256 of the content, lowercase hex: the same content is not ingested twice in one collection.</summary>
    public required string Sha256 { get; init; }
    public long SizeBytes { get; init; }
    public required byte[] Content { get; init; }

    /// <summary>One of <see cref="DocumentStatuses"/>.</summary>
    public required string Status { get; set; }

    /// <summary>How many steps of <see cref="IngestionSteps.All"/> are done, in order (0-4).</summary>
    public int StepsDone { get; set; }

    /// <summary>The step that failed last, and why; cleared when that step succeeds.</summary>
    public string? FailedStep { get; set; }
    public string? Error { get; set; }

    /// <summary>The extract step's output: <see cref="ExtractedSection"/>s as JSON.</summary>
    public string? Extracted { get; set; }

    public int ChunkCount { get; set; }

    /// <summary>The task that ingests it now (a re-embed submits a new one).</summary>
    public Guid? TaskId { get; set; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public Guid? CreatedBy { get; init; }
}

/// <summary>
/// One chunk of a document: its text and metadata in the database (keyword search reads them here), its vector in the
/// collection's index under <see cref="VectorKey"/>. (DocumentId, Position) is unique, so writing a document's chunks
/// again replaces them instead of adding to them.
/// </summary>
public sealed class KnowledgeChunk
{
    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public Guid CollectionId { get; init; }
    public Guid DocumentId { get; init; }
    public int Position { get; init; }
    public required string Text { get; init; }

    /// <summary>The headings above the chunk, outermost first, joined with " > "; null when there are none.</summary>
    public string? HeadingPath { get; init; }

    /// <summary>The PDF page it starts on (1-based); null for formats without pages.</summary>
    public int? Page { get; init; }
    public int Tokens { get; init; }

    /// <summary>The key of its vector in a vector index (USearch keys are 64-bit), and its rowid in SQLite's FTS table.</summary>
    public long VectorKey { get; init; }

    /// <summary>The embed step's output, float32 little-endian; kept so the index step (or a lost index) never re-embeds.</summary>
    public byte[]? Embedding { get; set; }
}

public static class VectorProviders
{
    public const string Embedded = "embedded";
    public const string Chroma = "chroma";
    public const string Qdrant = "qdrant";

    public static readonly string[] All = [Embedded, Chroma, Qdrant];
}

public static class DocumentStatuses
{
    public const string Queued = "queued";
    public const string Processing = "processing";
    public const string Ready = "ready";
    public const string Failed = "failed";
}

public static class IngestionSteps
{
    public const string Extract = "extract";
    public const string Chunk = "chunk";
    public const string Embed = "embed";
    public const string Index = "index";

    public static readonly string[] All = [Extract, Chunk, Embed, Index];
}

internal sealed class KnowledgeCollectionConfiguration : IEntityTypeConfiguration<KnowledgeCollection>
{
    public void Configure(EntityTypeBuilder<KnowledgeCollection> c)
    {
        c.ToTable("knowledge_collections");
        c.HasKey(x => x.Id);
        c.Property(x => x.Id).ValueGeneratedNever();
        c.Property(x => x.Name).HasMaxLength(KnowledgeCollection.NameMaxLength);
        c.Property(x => x.Description).HasMaxLength(KnowledgeCollection.DescriptionMaxLength);
        c.Property(x => x.EmbeddingModel).HasMaxLength(200);
        c.Property(x => x.VectorProvider).HasMaxLength(16);
        c.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        c.HasIndex(x => new { x.WorkspaceId, x.Name }).IsUnique();
        c.HasIndex(x => new { x.WorkspaceId, x.Id });
    }
}

internal sealed class KnowledgeDocumentConfiguration : IEntityTypeConfiguration<KnowledgeDocument>
{
    public void Configure(EntityTypeBuilder<KnowledgeDocument> d)
    {
        d.ToTable("knowledge_documents");
        d.HasKey(x => x.Id);
        d.Property(x => x.Id).ValueGeneratedNever();
        d.Property(x => x.Name).HasMaxLength(KnowledgeDocument.NameMaxLength);
        d.Property(x => x.SourceUrl).HasMaxLength(2_000);
        d.Property(x => x.Format).HasMaxLength(16);
        d.Property(x => x.Sha256).HasMaxLength(64);
        d.Property(x => x.Status).HasMaxLength(16);
        d.Property(x => x.FailedStep).HasMaxLength(16);
        d.HasOne<KnowledgeCollection>().WithMany().HasForeignKey(x => x.CollectionId).OnDelete(DeleteBehavior.Cascade);
        // The collection's list (ids are UUIDv7), and the same content only once per collection.
        d.HasIndex(x => new { x.CollectionId, x.Id });
        d.HasIndex(x => new { x.CollectionId, x.Sha256 }).IsUnique();
    }
}

internal sealed class KnowledgeChunkConfiguration : IEntityTypeConfiguration<KnowledgeChunk>
{
    public void Configure(EntityTypeBuilder<KnowledgeChunk> c)
    {
        c.ToTable("knowledge_chunks");
        c.HasKey(x => x.Id);
        c.Property(x => x.Id).ValueGeneratedNever();
        c.Property(x => x.HeadingPath).HasMaxLength(1_000);
        c.HasOne<KnowledgeDocument>().WithMany().HasForeignKey(x => x.DocumentId).OnDelete(DeleteBehavior.Cascade);
        c.HasIndex(x => new { x.DocumentId, x.Position }).IsUnique();
        c.HasIndex(x => new { x.CollectionId, x.VectorKey });
    }
}
