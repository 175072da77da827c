using System.Diagnostics;
using Agentry.Data;
using Agentry.Knowledge;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Operations;

/// <summary>
/// The <c>reindex</c> verb: rebuilds collections' vector indexes from the database, which keeps every chunk's vector in
/// its row (the embed step's output), so nothing is embedded again. Each collection's vectors are dropped from its
/// provider, then every chunk of a document whose ingestion finished is upserted under its key; a document still being
/// ingested is left to its own task, whose index step upserts it.
/// </summary>
internal sealed class VectorReindex(IServiceScopeFactory scopes, VectorIndexes indexes, IOptions<KnowledgeOptions> options)
{
    private const int Batch = 512;
    private static readonly int AllSteps = IngestionSteps.All.Length;

    /// <summary>Rebuilds the collection named by <paramref name="selector"/> (an id or a name), or every collection; 0 when all were rebuilt.</summary>
    public async Task<int> ReindexAsync(string? selector, TextWriter report, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var collections = await SelectAsync(db, selector, ct);
        var failed = 0;
        foreach (var collection in collections)
        {
            var label = $"collection {collection.Id} ({collection.Name}, {collection.VectorProvider})";
            if (!options.Value.Serves(collection.VectorProvider))
            {
                await report.WriteLineAsync($"agentry: skipped {label}: the {collection.VectorProvider} provider is not configured here.");
                failed++;
                continue;
            }
            var started = Stopwatch.StartNew();
            try
            {
                var chunks = await RebuildAsync(db, collection, ct);
                await report.WriteLineAsync($"agentry: reindexed {label}: {chunks} chunks in {DatabaseBackup.Seconds(started)}");
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await report.WriteLineAsync($"agentry: reindexing {label} failed: {ex.Message}");
                failed++;
            }
        }
        if (collections.Count == 0)
        {
            await report.WriteLineAsync("agentry: there are no collections to reindex.");
        }
        return failed == 0 ? 0 : 1;
    }

    private async Task<int> RebuildAsync(AppDbContext db, KnowledgeCollection collection, CancellationToken ct)
    {
        var index = indexes.For(collection);
        var vectors = VectorIndexes.Of(collection);
        await index.DropAsync(vectors, ct);
        var count = 0;
        var after = long.MinValue;
        while (true)
        {
            var batch = await db.KnowledgeChunks.AsNoTracking()
                .Where(c => c.CollectionId == collection.Id && c.VectorKey > after && c.Embedding != null
                    && db.KnowledgeDocuments.Any(d => d.Id == c.DocumentId && d.StepsDone >= AllSteps))
                .OrderBy(c => c.VectorKey).Take(Batch)
                .Select(c => new { c.VectorKey, c.DocumentId, c.Embedding })
                .ToListAsync(ct);
            if (batch.Count == 0)
            {
                return count;
            }
            await index.UpsertAsync(vectors, batch.Select(c => new VectorRecord(c.VectorKey, c.DocumentId, IngestionTaskHandler.VectorOf(c.Embedding!))).ToList(), ct);
            count += batch.Count;
            after = batch[^1].VectorKey;
        }
    }

    private static async Task<List<KnowledgeCollection>> SelectAsync(AppDbContext db, string? selector, CancellationToken ct)
    {
        var collections = db.KnowledgeCollections.AsNoTracking();
        if (selector is null)
        {
            return await collections.OrderBy(c => c.Id).ToListAsync(ct);
        }
        var chosen = Guid.TryParse(selector, out var id)
            ? await collections.Where(c => c.Id == id).ToListAsync(ct)
            : await collections.Where(c => c.Name == selector).ToListAsync(ct);
        return chosen.Count switch
        {
            0 => throw new OperationException($"No collection has the id or name '{selector}'."),
            1 => chosen,
            _ => throw new OperationException($"{chosen.Count} collections (in different workspaces) are named '{selector}'; name one by its id."),
        };
    }
}
