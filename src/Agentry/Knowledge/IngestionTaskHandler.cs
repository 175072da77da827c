using System.Runtime.InteropServices;
using System.Text.Json;
using Agentry.Data;
using Agentry.Models;
using Agentry.Tasks;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Knowledge;

/// <summary>
/// Runs one document's ingestion: extract, chunk, embed, index, in order, from the first step not yet done. Each step's
/// output is committed before the next starts (the extracted text on the document, the chunks with their vectors in
/// their rows, the vectors in the index), so an attempt after a failure or a lost lease starts where the last one
/// stopped, and doing a step again replaces its output: chunks are written delete-then-insert in one transaction, keyed
/// by document and position; vectors are upserted by key. Every step reports progress on the task's event stream.
/// </summary>
internal sealed class IngestionTaskHandler(
    IServiceScopeFactory scopes, EmbeddingModels models, VectorIndexes indexes, TimeProvider clock, ILogger<IngestionTaskHandler> logger) : ITaskHandler
{
    /// <summary>The kind of the system agent that owns ingestion tasks (not one users can create).</summary>
    public const string AgentKind = "ingest";

    internal const int EmbedBatch = 64;
    private const int IndexBatch = 512;

    public string Kind => AgentKind;

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var input = run.Input.Deserialize<IngestionInput>(JsonSerializerOptions.Web)
            ?? throw new TaskFailedException("The task's input names no document.", retryable: false);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var document = await db.KnowledgeDocuments.FirstOrDefaultAsync(d => d.Id == input.DocumentId && d.WorkspaceId == run.WorkspaceId, cancellationToken);
        if (document is null || document.TaskId != run.TaskId)
        {
            // Deleted meanwhile, or a newer ingestion (a re-embed) took it over: nothing left for this task.
            return Result(new { documentId = input.DocumentId, skipped = document is null ? "deleted" : "superseded" });
        }
        var collection = await db.KnowledgeCollections.AsNoTracking().FirstAsync(c => c.Id == document.CollectionId, cancellationToken);
        await SetAsync(db, document, d => d.Status = DocumentStatuses.Processing, cancellationToken);
        while (document.StepsDone < IngestionSteps.All.Length)
        {
            var step = IngestionSteps.All[document.StepsDone];
            await run.Progress.ReportAsync(new { documentId = document.Id, step, status = "running" }, cancellationToken);
            try
            {
                await RunStepAsync(step, db, collection, document, cancellationToken);
                await SetAsync(db, document, d => (d.StepsDone, d.FailedStep, d.Error) = (d.StepsDone + 1, null, null), cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                db.ChangeTracker.Clear();
                if (!await db.KnowledgeDocuments.AnyAsync(d => d.Id == document.Id, CancellationToken.None))
                {
                    return await DeletedAsync(collection, document.Id, step);
                }
                var error = ex is DocumentFormatException or TaskFailedException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
                KnowledgeLog.StepFailed(logger, document.Id, step, error);
                await db.KnowledgeDocuments.Where(d => d.Id == document.Id).ExecuteUpdateAsync(s => s
                    .SetProperty(d => d.Status, DocumentStatuses.Failed).SetProperty(d => d.FailedStep, step)
                    .SetProperty(d => d.Error, error).SetProperty(d => d.UpdatedAt, clock.UtcNow()), CancellationToken.None);
                await run.Progress.ReportAsync(new { documentId = document.Id, step, status = "failed", error }, CancellationToken.None);
                throw new TaskFailedException($"Step {step} failed: {error}", retryable: ex is not DocumentFormatException and not TaskFailedException { Retryable: false }, ex);
            }
            await run.Progress.ReportAsync(new { documentId = document.Id, step, status = "done" }, cancellationToken);
        }
        try
        {
            await SetAsync(db, document, d => d.Status = DocumentStatuses.Ready, cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            return await DeletedAsync(collection, document.Id, IngestionSteps.Index);
        }
        KnowledgeLog.DocumentReady(logger, document.Id, document.ChunkCount);
        return Result(new { documentId = document.Id, chunks = document.ChunkCount });
    }

    /// <summary>
    /// The document was deleted while a step ran (its row, and with it its chunks, are gone; a later step's write found
    /// nothing to update). The delete removed the document's vectors once its row was gone, but an index step that read
    /// a batch before could have upserted it after that: remove them again, so no vector outlives its chunk.
    /// </summary>
    private async Task<JsonElement?> DeletedAsync(KnowledgeCollection collection, Guid documentId, string step)
    {
        await indexes.For(collection).DeleteDocumentAsync(VectorIndexes.Of(collection), documentId, CancellationToken.None);
        KnowledgeLog.DocumentGone(logger, documentId, step);
        return Result(new { documentId, skipped = "deleted" });
    }

    private Task RunStepAsync(string step, AppDbContext db, KnowledgeCollection collection, KnowledgeDocument document, CancellationToken ct) => step switch
    {
        IngestionSteps.Extract => ExtractAsync(db, document, ct),
        IngestionSteps.Chunk => ChunkAsync(db, collection, document, ct),
        IngestionSteps.Embed => EmbedAsync(db, collection, document, ct),
        _ => IndexAsync(db, collection, document, ct),
    };

    private async Task ExtractAsync(AppDbContext db, KnowledgeDocument document, CancellationToken ct)
    {
        var sections = DocumentExtraction.Extract(document.Format, document.Content);
        if (sections.All(s => string.IsNullOrWhiteSpace(s.Text)))
        {
            throw new DocumentFormatException("The document has no text.");
        }
        document.Extracted = JsonSerializer.Serialize(sections, JsonSerializerOptions.Web);
        await db.SaveChangesAsync(ct);
    }

    private async Task ChunkAsync(AppDbContext db, KnowledgeCollection collection, KnowledgeDocument document, CancellationToken ct)
    {
        var sections = JsonSerializer.Deserialize<List<ExtractedSection>>(document.Extracted!, JsonSerializerOptions.Web)!;
        var count = models.Tokens is { } tokens ? tokens.CountTokens : (Func<string, int>)TokenEstimate.Of;
        var drafts = Chunker.Split(sections, count, collection.ChunkTokens, collection.ChunkOverlap);
        // Vectors of an earlier chunking (a re-chunk after a settings change) go first: their keys die with their rows.
        await indexes.For(collection).DeleteDocumentAsync(VectorIndexes.Of(collection), document.Id, ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.KnowledgeChunks.Where(c => c.DocumentId == document.Id).ExecuteDeleteAsync(ct);
        db.KnowledgeChunks.AddRange(drafts.Select(d =>
        {
            var id = Ids.New();
            return new KnowledgeChunk
            {
                Id = id, WorkspaceId = document.WorkspaceId, CollectionId = document.CollectionId, DocumentId = document.Id, Position = d.Position,
                Text = d.Text, HeadingPath = d.HeadingPath, Page = d.Page, Tokens = d.Tokens, VectorKey = KeyOf(id),
            };
        }));
        document.ChunkCount = drafts.Count;
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        db.ChangeTracker.Clear();
        db.Attach(document);
    }

    /// <summary>Embeds the chunks that have no vector yet, a batch at a time, each batch committed: a retry embeds only what is left.</summary>
    private async Task EmbedAsync(AppDbContext db, KnowledgeCollection collection, KnowledgeDocument document, CancellationToken ct)
    {
        if (collection.EmbeddingModel != models.Id)
        {
            throw new TaskFailedException(
                $"The collection embeds with '{collection.EmbeddingModel}', but this installation's embedding model is '{models.Id}'.", retryable: false);
        }
        while (true)
        {
            var batch = await db.KnowledgeChunks.Where(c => c.DocumentId == document.Id && c.Embedding == null)
                .OrderBy(c => c.Position).Take(EmbedBatch).ToListAsync(ct);
            if (batch.Count == 0)
            {
                return;
            }
            var vectors = await models.GenerateAsync(batch.Select(c => c.Text).ToList(), ct);
            for (var i = 0; i < batch.Count; i++)
            {
                var vector = vectors[i].Vector;
                if (vector.Length != collection.Dimensions)
                {
                    throw new TaskFailedException(
                        $"The model gave {vector.Length}-dimensional vectors; the collection's have {collection.Dimensions}.", retryable: false);
                }
                batch[i].Embedding = MemoryMarshal.AsBytes(vector.Span).ToArray();
            }
            await db.SaveChangesAsync(ct);
        }
    }

    private async Task IndexAsync(AppDbContext db, KnowledgeCollection collection, KnowledgeDocument document, CancellationToken ct)
    {
        var index = indexes.For(collection);
        var position = -1;
        while (true)
        {
            var batch = await db.KnowledgeChunks.AsNoTracking().Where(c => c.DocumentId == document.Id && c.Position > position)
                .OrderBy(c => c.Position).Take(IndexBatch).Select(c => new { c.Position, c.VectorKey, c.Embedding }).ToListAsync(ct);
            if (batch.Count == 0)
            {
                return;
            }
            await index.UpsertAsync(VectorIndexes.Of(collection),
                batch.Select(c => new VectorRecord(c.VectorKey, document.Id, VectorOf(c.Embedding!))).ToList(), ct);
            position = batch[^1].Position;
        }
    }

    private async Task SetAsync(AppDbContext db, KnowledgeDocument document, Action<KnowledgeDocument> change, CancellationToken ct)
    {
        change(document);
        document.UpdatedAt = clock.UtcNow();
        await db.SaveChangesAsync(ct);
    }

    public static float[] VectorOf(byte[] bytes) => MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    /// <summary>The chunk's key in a vector index: the random low 63 bits of its UUIDv7 (positive, so it fits every provider's integer ids).</summary>
    public static long KeyOf(Guid id) => BitConverter.ToInt64(id.ToByteArray(), 8) & long.MaxValue;

    private static JsonElement Result(object value) => JsonSerializer.SerializeToElement(value, JsonSerializerOptions.Web);
}
