using Agentry.Knowledge;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Agentry.Tests.Knowledge;

/// <summary>The chunker with MiniLM's own tokenizer, and the embedded index under concurrent writes and reads.</summary>
public sealed class ChunkingAndIndexTests
{
    private static readonly MiniLmEmbeddingGenerator MiniLm = new();

    [Fact]
    public void Chunks_fit_the_token_budget_follow_headings_and_overlap_by_whole_sentences()
    {
        var body = string.Join(" ", Enumerable.Range(1, 30).Select(i => $"Sentence number {i} talks about the weather in town {i}."));
        var text = $"# Atlas\n\nIntro paragraph.\n\n## Climate\n\n{body}\n\n## Roads\n\nThe roads are paved.";
        var chunks = Chunker.Split([new ExtractedSection(null, text)], MiniLm.CountTokens, 60, 15);

        Assert.All(chunks, c => Assert.True(c.Tokens <= 60, $"{c.Tokens} tokens"));
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Position));
        Assert.Equal("Atlas", chunks[0].HeadingPath);
        Assert.StartsWith("# Atlas", chunks[0].Text);
        var climate = chunks.Where(c => c.HeadingPath == "Atlas > Climate").ToList();
        Assert.True(climate.Count >= 3);
        // Each chunk cut for size begins with the last sentence(s) of the one before.
        for (var i = 1; i < climate.Count; i++)
        {
            var firstSentence = climate[i].Text.Split(". ")[0];
            Assert.Contains(firstSentence, climate[i - 1].Text);
        }
        Assert.Equal(("Atlas > Roads", "## Roads\n\nThe roads are paved."), (chunks[^1].HeadingPath, chunks[^1].Text));
    }

    [Fact]
    public void A_page_starts_a_chunk_and_an_overlong_word_is_cut()
    {
        var chunks = Chunker.Split(
            [new ExtractedSection(1, "Page one text."), new ExtractedSection(2, "Page two text " + new string('x', 3000))], MiniLm.CountTokens, 50, 0);
        Assert.Equal((1, "Page one text."), (chunks[0].Page, chunks[0].Text));
        Assert.All(chunks.Skip(1), c => Assert.Equal(2, c.Page));
        Assert.All(chunks, c => Assert.True(c.Tokens <= 50, $"{c.Tokens} tokens"));
    }

    [Fact]
    public async Task The_embedded_index_takes_concurrent_upserts_and_queries_and_deletes_by_document()
    {
        var options = Options.Create(new KnowledgeOptions { IndexDirectory = TempFiles.Directory() });
        using var index = new UsearchVectorIndex(options, NullLogger<UsearchVectorIndex>.Instance);
        var collection = new VectorCollection(Guid.CreateVersion7(), 8);
        var documents = Enumerable.Range(0, 8).Select(_ => Guid.CreateVersion7()).ToList();
        var random = new Random(7);
        float[] Vector() => Enumerable.Range(0, 8).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var batches = documents.Select((d, i) => Enumerable.Range(0, 50).Select(j => new VectorRecord(i * 1_000 + j + 1, d, Vector())).ToList()).ToList();
        var probe = Vector();

        await Task.WhenAll(batches.Select(b => Task.Run(() => index.UpsertAsync(collection, b, default)))
            .Concat(Enumerable.Range(0, 8).Select(_ => Task.Run(() => index.QueryAsync(collection, probe, 10, null, default)))));
        await index.UpsertAsync(collection, batches[0], default); // again: replaced, not added

        Assert.Equal(400, (await index.QueryAsync(collection, probe, 1_000, null, default)).Count);
        var filtered = await index.QueryAsync(collection, probe, 20, [documents[3]], default);
        Assert.Equal(20, filtered.Count);
        Assert.All(filtered, m => Assert.InRange(m.Key, 3_001, 3_050));
        await index.DeleteDocumentAsync(collection, documents[3], default);
        Assert.Empty(await index.QueryAsync(collection, probe, 20, [documents[3]], default));

        using var reloaded = new UsearchVectorIndex(options, NullLogger<UsearchVectorIndex>.Instance);
        Assert.Equal(350, (await reloaded.QueryAsync(collection, probe, 1_000, null, default)).Count);
    }
}
