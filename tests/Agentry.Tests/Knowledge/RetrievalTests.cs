using System.Globalization;
using Agentry.Knowledge;
using Agentry.Tests.Infrastructure;
using Agentry.Identity;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// Retrieval quality on the set shipped in RetrievalSet/: ten self-written Markdown documents of five sections each and
/// 52 questions, each naming the document and section that answers it. A question is a hit when that section's chunk is
/// among the top five results. Real MiniLM embeddings, the real embedded index, SQLite FTS5.
/// </summary>
public sealed class RetrievalTests(SqliteKnowledgeFixture fixture) : IClassFixture<SqliteKnowledgeFixture>
{
    private static readonly string SetDirectory = Path.Combine(AppContext.BaseDirectory, "Knowledge", "RetrievalSet");

    [Fact]
    public async Task Hybrid_search_finds_at_least_as_many_answers_in_the_top_five_as_vector_or_keyword_alone()
    {
        var app = fixture.App;
        var client = await app.UserClientAsync(await app.CreateWorkspaceAsync(), Roles.Member);
        var collection = (await client.CreateCollectionAsync("retrieval")).Id;
        var documents = new Dictionary<string, Guid>();
        foreach (var file in Directory.GetFiles(SetDirectory, "*.md").Order())
        {
            documents[Path.GetFileName(file)] = (await client.AddAsync(collection, Path.GetFileName(file), await File.ReadAllTextAsync(file), "text/markdown")).Id;
        }
        foreach (var id in documents.Values)
        {
            Assert.Equal(DocumentStatuses.Ready, (await client.SettledAsync(collection, id)).Status);
        }
        var questions = (await File.ReadAllLinesAsync(Path.Combine(SetDirectory, "questions.tsv")))
            .Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (Document: p[0], Section: p[1], Question: p[2])).ToList();
        Assert.True(questions.Count >= 50);

        var hits = new Dictionary<string, int> { [SearchModes.Vector] = 0, [SearchModes.Keyword] = 0, [SearchModes.Hybrid] = 0 };
        foreach (var (document, section, question) in questions)
        {
            foreach (var mode in hits.Keys.ToList())
            {
                var results = (await client.SearchAsync(collection, question, mode, topK: 5)).Results;
                if (results.Any(r => r.DocumentId == documents[document] && r.HeadingPath?.EndsWith(section, StringComparison.Ordinal) == true))
                {
                    hits[mode]++;
                }
            }
        }
        var rate = hits.ToDictionary(h => h.Key, h => (double)h.Value / questions.Count);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join("; ", rate.Select(r =>
            $"hit@5 {r.Key}: {r.Value.ToString("0.000", CultureInfo.InvariantCulture)} ({hits[r.Key]}/{questions.Count})")));
        Console.WriteLine(string.Join("; ", rate.Select(r => $"hit@5 {r.Key}: {r.Value:0.000}")));
        Assert.True(rate[SearchModes.Hybrid] >= rate[SearchModes.Vector], $"hybrid {rate[SearchModes.Hybrid]:0.000} < vector {rate[SearchModes.Vector]:0.000}");
        Assert.True(rate[SearchModes.Hybrid] >= rate[SearchModes.Keyword], $"hybrid {rate[SearchModes.Hybrid]:0.000} < keyword {rate[SearchModes.Keyword]:0.000}");
        Assert.True(rate[SearchModes.Vector] >= 0.7, $"vector hit@5 is only {rate[SearchModes.Vector]:0.000}");
    }
}
