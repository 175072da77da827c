using System.Text.RegularExpressions;
using Agentry.Data;
using Agentry.Models;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Knowledge;

/// <summary>
/// Finds a collection's chunks for a query: by vector (the query embedded with the collection's model, nearest in the
/// collection's vector index), by keyword (SQLite FTS5 with BM25, or PostgreSQL full text with ts_rank_cd over a GIN-indexed
/// tsvector), or both fused by reciprocal rank (each list contributes 1 / (60 + rank) per chunk, so neither's raw scores,
/// which are not comparable, decide alone). Filters apply inside each search, not to its final page.
/// </summary>
internal sealed partial class KnowledgeSearch(AppDbContext db, EmbeddingModels models, VectorIndexes indexes)
{
    /// <summary>The RRF constant from Cormack et al. (2009); it damps the weight of the very first ranks.</summary>
    private const int RrfK = 60;

    public async Task<IReadOnlyList<SearchHit>> SearchAsync(
        KnowledgeCollection collection, string query, int topK, string mode, SearchFilter? filter, CancellationToken ct)
    {
        // Fusion looks deeper than it returns, so a chunk ranked well by one list and modestly by the other can win.
        var depth = mode == SearchModes.Hybrid ? Math.Max(topK * 4, 40) : topK;
        IEnumerable<(Guid ChunkId, double Score)> ranked = mode switch
        {
            SearchModes.Vector => await VectorAsync(collection, query, depth, filter, ct),
            SearchModes.Keyword => await KeywordAsync(collection, query, depth, filter, ct),
            _ => Fuse(await VectorAsync(collection, query, depth, filter, ct), await KeywordAsync(collection, query, depth, filter, ct)),
        };
        var top = ranked.Take(topK).ToList();
        var ids = top.Select(t => t.ChunkId).ToList();
        var rows = await db.KnowledgeChunks.AsNoTracking()
            .Where(c => c.CollectionId == collection.Id && ids.Contains(c.Id))
            .Join(db.KnowledgeDocuments, c => c.DocumentId, d => d.Id, (c, d) => new { c.Id, c.DocumentId, DocumentName = d.Name, c.Position, c.HeadingPath, c.Page, c.Text })
            .ToDictionaryAsync(r => r.Id, ct);
        return top.Where(t => rows.ContainsKey(t.ChunkId)).Select(t =>
        {
            var r = rows[t.ChunkId];
            return new SearchHit(r.Id, r.DocumentId, r.DocumentName, r.Position, r.HeadingPath, r.Page, r.Text, t.Score);
        }).ToList();
    }

    /// <summary>Chunk ids, closest first, with their cosine similarity.</summary>
    private async Task<List<(Guid ChunkId, double Score)>> VectorAsync(
        KnowledgeCollection collection, string query, int depth, SearchFilter? filter, CancellationToken ct)
    {
        var vector = (await models.GenerateAsync([query], ct))[0].Vector.ToArray();
        // A heading filter is applied to the rows, so ask the index for more than will be kept.
        var wanted = filter?.HeadingContains is null ? depth : depth * 5;
        var matches = await indexes.For(collection).QueryAsync(VectorIndexes.Of(collection), vector, wanted, filter?.DocumentIds, ct);
        var keys = matches.Select(m => m.Key).ToList();
        var chunks = await Filtered(db.KnowledgeChunks.AsNoTracking().Where(c => c.CollectionId == collection.Id && keys.Contains(c.VectorKey)), filter)
            .Select(c => new { c.Id, c.VectorKey }).ToListAsync(ct);
        var byKey = chunks.ToDictionary(c => c.VectorKey, c => c.Id);
        // A key without a row is a vector whose document was deleted meanwhile: skipped.
        return matches.Where(m => byKey.ContainsKey(m.Key)).Select(m => (byKey[m.Key], m.Score)).Take(depth).ToList();
    }

    /// <summary>Chunk ids, best first, with the engine's relevance (BM25 negated on SQLite, ts_rank_cd on PostgreSQL).</summary>
    private async Task<List<(Guid ChunkId, double Score)>> KeywordAsync(
        KnowledgeCollection collection, string query, int depth, SearchFilter? filter, CancellationToken ct)
    {
        var words = Word().Matches(query).Select(m => m.Value.ToLowerInvariant()).Distinct().ToList();
        if (words.Count == 0)
        {
            return [];
        }
        var hits = db is PostgresAppDbContext
            ? db.Database.SqlQuery<KeywordHit>($"""
                SELECT c."Id" AS "ChunkId", c."DocumentId", c."HeadingPath", ts_rank_cd(c."SearchVector", q)::float8 AS "Rank"
                FROM knowledge_chunks c, to_tsquery('english', {string.Join(" | ", words)}) q
                WHERE c."CollectionId" = {collection.Id} AND c."SearchVector" @@ q
                """)
            : db.Database.SqlQuery<KeywordHit>($"""
                SELECT c."Id" AS "ChunkId", c."DocumentId", c."HeadingPath", -bm25(knowledge_chunks_fts) AS "Rank"
                FROM knowledge_chunks_fts JOIN knowledge_chunks c ON c."CollectionId" = {collection.Id} AND c."VectorKey" = knowledge_chunks_fts.rowid
                WHERE knowledge_chunks_fts MATCH {string.Join(" OR ", words.Select(w => $"\"{w}\""))}
                """);
        if (filter?.DocumentIds is { } documents)
        {
            hits = hits.Where(h => documents.Contains(h.DocumentId));
        }
        if (filter?.HeadingContains is { } heading)
        {
            hits = hits.Where(h => h.HeadingPath != null && h.HeadingPath.Contains(heading));
        }
        var found = await hits.OrderByDescending(h => h.Rank).Take(depth).ToListAsync(ct);
        return found.Select(h => (h.ChunkId, h.Rank)).ToList();
    }

    private static IQueryable<KnowledgeChunk> Filtered(IQueryable<KnowledgeChunk> chunks, SearchFilter? filter)
    {
        if (filter?.DocumentIds is { } documents)
        {
            chunks = chunks.Where(c => documents.Contains(c.DocumentId));
        }
        if (filter?.HeadingContains is { } heading)
        {
            chunks = chunks.Where(c => c.HeadingPath != null && c.HeadingPath.Contains(heading));
        }
        return chunks;
    }

    /// <summary>Reciprocal rank fusion of two best-first lists.</summary>
    private static IEnumerable<(Guid ChunkId, double Score)> Fuse(List<(Guid ChunkId, double Score)> vector, List<(Guid ChunkId, double Score)> keyword)
    {
        var scores = new Dictionary<Guid, double>();
        foreach (var list in new[] { vector, keyword })
        {
            for (var rank = 0; rank < list.Count; rank++)
            {
                scores[list[rank].ChunkId] = scores.GetValueOrDefault(list[rank].ChunkId) + 1.0 / (RrfK + rank + 1);
            }
        }
        return scores.OrderByDescending(s => s.Value).Select(s => (s.Key, s.Value));
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex Word();

    /// <summary>A keyword match as the full-text query returns it.</summary>
    internal sealed class KeywordHit
    {
        public Guid ChunkId { get; init; }
        public Guid DocumentId { get; init; }
        public string? HeadingPath { get; init; }
        public double Rank { get; init; }
    }
}
