using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Agentry.Data;
using Agentry.Models;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

/// <summary>Retrieval for agents and conversations. Section <c>Agentry:Knowledge:Retrieval</c>.</summary>
public sealed class RetrievalOptions
{
    public const string SectionName = "Agentry:Knowledge:Retrieval";

    /// <summary>How many chunks go into a prompt, over all the collections it names.</summary>
    [Range(1, 50, ErrorMessage = "Agentry:Knowledge:Retrieval:TopK must be between 1 and 50.")]
    public int TopK { get; set; } = 4;

    /// <summary>The most characters of chunk text a prompt gets (the last chunks are left out to stay under it).</summary>
    [Range(200, 200_000, ErrorMessage = "Agentry:Knowledge:Retrieval:MaxCharacters must be between 200 and 200000.")]
    public int MaxCharacters { get; set; } = 6_000;
}

/// <summary>A chunk that went into a prompt: <see cref="Index"/> is the number the model cites it by, as <c>[n]</c>.</summary>
public sealed record Citation(
    int Index, Guid CollectionId, Guid DocumentId, string DocumentName, Guid ChunkId, int Position, string? HeadingPath, int? Page, double Score)
{
    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    public static string? ToJson(IReadOnlyList<Citation> citations) => citations.Count == 0 ? null : JsonSerializer.Serialize(citations, Json);

    public static IReadOnlyList<Citation> Parse(string? json) => json is null ? [] : JsonSerializer.Deserialize<List<Citation>>(json, Json)!;
}

/// <summary>A citation as a reply shows it: <see cref="Cited"/> says whether the reply's text refers to it (<c>[n]</c>).</summary>
public sealed record CitationResponse(
    int Index, Guid CollectionId, Guid DocumentId, string DocumentName, Guid ChunkId, int Position, string? HeadingPath, int? Page, double Score, bool Cited)
{
    public static IReadOnlyList<CitationResponse> Of(IReadOnlyList<Citation> citations, string reply)
    {
        if (citations.Count == 0)
        {
            return [];
        }
        var cited = KnowledgeRetrieval.CitedIndexes(reply);
        return [.. citations.Select(c => new CitationResponse(
            c.Index, c.CollectionId, c.DocumentId, c.DocumentName, c.ChunkId, c.Position, c.HeadingPath, c.Page, c.Score, cited.Contains(c.Index)))];
    }
}

/// <summary>What retrieval found for a prompt: the sources, and the message that shows them to the model.</summary>
public sealed record Retrieved(IReadOnlyList<Citation> Citations, IReadOnlyList<string> Texts)
{
    public static readonly Retrieved None = new([], []);

    /// <summary>The system message that carries the sources, numbered; null when there are none.</summary>
    public string? Context
    {
        get
        {
            if (Citations.Count == 0)
            {
                return null;
            }
            var text = new StringBuilder(
                "Sources from the workspace's knowledge base follow, numbered. Answer from them where they help, and cite each " +
                "source you use by its number in square brackets, like [1]. If they do not hold the answer, say so.\n");
            for (var i = 0; i < Citations.Count; i++)
            {
                var c = Citations[i];
                text.Append('\n').Append('[').Append(c.Index).Append("] ").Append(c.DocumentName);
                if (c.HeadingPath is { Length: > 0 } heading)
                {
                    text.Append(" — ").Append(heading);
                }
                if (c.Page is { } page)
                {
                    text.Append(" (page ").Append(page).Append(')');
                }
                text.Append('\n').Append(Texts[i]).Append('\n');
            }
            return text.ToString();
        }
    }

    /// <summary>The first sources whose message costs at most <paramref name="tokens"/>, by <paramref name="cost"/>.</summary>
    public Retrieved Within(int tokens, Func<string, int> cost)
    {
        var kept = this;
        while (kept.Citations.Count > 0 && cost(kept.Context!) > tokens)
        {
            kept = new Retrieved([.. kept.Citations.SkipLast(1)], [.. kept.Texts.SkipLast(1)]);
        }
        return kept;
    }
}

/// <summary>
/// The chunks of the collections an agent or a conversation names (by id or name, in its workspace) that best match a
/// query: each collection is searched as <c>POST …/search</c> would (hybrid, or keyword alone when this installation does
/// not serve the collection's embedding model), and the lists are taken rank by rank in turn, so no collection's scores,
/// which are not comparable across collections, crowd out another's. A collection that no longer exists is passed over.
/// </summary>
internal sealed partial class KnowledgeRetrieval(IServiceScopeFactory scopes, IOptions<RetrievalOptions> options, ILogger<KnowledgeRetrieval> logger)
{
    public async Task<Retrieved> RetrieveAsync(Guid workspaceId, IReadOnlyList<string> collections, string query, CancellationToken ct)
    {
        if (collections.Count == 0 || string.IsNullOrWhiteSpace(query))
        {
            return Retrieved.None;
        }
        await using var scope = scopes.CreateAsyncScope();
        var found = await FindAsync(scope.ServiceProvider.GetRequiredService<AppDbContext>(), workspaceId, collections, ct);
        if (collections.Count(named => !found.Any(c => Names(named, c))) is > 0 and var missing)
        {
            LogMissing(logger, workspaceId, missing);
        }
        var search = scope.ServiceProvider.GetRequiredService<KnowledgeSearch>();
        var served = scope.ServiceProvider.GetRequiredService<EmbeddingModels>().Id;
        var topK = options.Value.TopK;
        var lists = new List<(KnowledgeCollection Collection, IReadOnlyList<SearchHit> Hits)>();
        foreach (var collection in found)
        {
            var mode = collection.EmbeddingModel == served ? SearchModes.Hybrid : SearchModes.Keyword;
            lists.Add((collection, await search.SearchAsync(collection, query, topK, mode, null, ct)));
        }
        var citations = new List<Citation>();
        var texts = new List<string>();
        var characters = 0;
        for (var rank = 0; citations.Count < topK && lists.Any(l => l.Hits.Count > rank); rank++)
        {
            foreach (var (collection, hits) in lists.Where(l => l.Hits.Count > rank))
            {
                var hit = hits[rank];
                if (citations.Count == topK || characters + hit.Text.Length > options.Value.MaxCharacters)
                {
                    return new Retrieved(citations, texts);
                }
                characters += hit.Text.Length;
                citations.Add(new Citation(citations.Count + 1, collection.Id, hit.DocumentId, hit.DocumentName, hit.ChunkId, hit.Position, hit.HeadingPath, hit.Page, hit.Score));
                texts.Add(hit.Text);
            }
        }
        return new Retrieved(citations, texts);
    }

    /// <summary>The workspace's collections among <paramref name="named"/> (each an id or a name), by name.</summary>
    public static Task<List<KnowledgeCollection>> FindAsync(AppDbContext db, Guid workspaceId, IReadOnlyList<string> named, CancellationToken ct)
    {
        var ids = named.Select(n => Guid.TryParse(n, out var id) ? id : Guid.Empty).Where(id => id != Guid.Empty).ToList();
        return db.KnowledgeCollections.AsNoTracking()
            .Where(c => c.WorkspaceId == workspaceId && (ids.Contains(c.Id) || named.Contains(c.Name)))
            .OrderBy(c => c.Name).ToListAsync(ct);
    }

    /// <summary>Whether <paramref name="named"/> (an id or a name) is <paramref name="collection"/>.</summary>
    public static bool Names(string named, KnowledgeCollection collection) =>
        named == collection.Name || (Guid.TryParse(named, out var id) && id == collection.Id);

    /// <summary>The source numbers a reply cites, as <c>[1]</c> or <c>[1, 3]</c>.</summary>
    public static HashSet<int> CitedIndexes(string reply) =>
        [.. CitationMarks().Matches(reply).SelectMany(m => m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .Select(n => int.TryParse(n, out var i) ? i : 0).Where(i => i > 0)];

    [GeneratedRegex(@"\[(\d+(?:\s*,\s*\d+)*)\]")]
    private static partial Regex CitationMarks();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retrieval in workspace {WorkspaceId}: {Missing} named collections do not exist and are passed over")]
    private static partial void LogMissing(ILogger logger, Guid workspaceId, int missing);
}
