using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Agentry.Knowledge;
using Agentry.Models;

namespace Agentry.KnowledgeBench;

/// <summary>
/// Ingestion throughput against its floor. The baseline is the in-process MiniLM generator (the service's own class) embedding
/// exactly the chunks the pipeline makes of the same documents (the production chunker with the model's tokenizer and the
/// default chunk settings), one document at a time in the pipeline's batches. End to end is the running service: the
/// documents uploaded through the API into a new collection, timed from the first upload until every one is <c>ready</c>
/// (extracted, chunked, embedded, indexed, each step committed). Rounds alternate the two, so drift affects both alike.
/// </summary>
internal static class IngestBench
{
    private static readonly string[] Words =
        ("harbour tide lantern ledger copper valve engine signal river bridge orchard meadow quarry timber granary furnace " +
        "compass anchor beacon canal ferry market guild mill press loom forge kiln barrel wagon carriage station depot " +
        "survey report measure record inspect repair replace order deliver schedule maintain calibrate adjust monitor " +
        "pressure flow voltage current temperature humidity weight volume distance speed angle frequency interval " +
        "north south east west upper lower inner outer early late daily weekly monthly annual seasonal regional " +
        "the a of to and in on for with by from at as is was are were be been has have had will would should must can").Split(' ');

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var documents = options.Number("documents", 40);
        var paragraphs = options.Number("paragraphs", 60);
        var runs = options.Number("runs", 3);
        var texts = Enumerable.Range(1, documents).Select(d => Document(d, paragraphs)).ToList();
        var defaults = new KnowledgeOptions();

        using var miniLm = new MiniLmEmbeddingGenerator();
        var chunks = texts.Select(t => Chunker.Split(DocumentExtraction.Extract(DocumentFormats.Text, Encoding.UTF8.GetBytes(t)),
            miniLm.CountTokens, defaults.DefaultChunkTokens, defaults.DefaultChunkOverlap).Select(c => c.Text).ToList()).ToList();
        var total = chunks.Sum(c => c.Count);
        Console.Error.WriteLine($"knowledge-bench: {documents} documents, {total} chunks of at most {defaults.DefaultChunkTokens} tokens");

        using var http = new HttpClient { BaseAddress = new Uri(options.Required("url")), Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(http, options.Required("email"), options.Required("password")));
        http.DefaultRequestHeaders.Add("Agentry-Workspace", (await JsonAsync(await http.GetAsync("/api/v1/workspaces?limit=1")))["items"]![0]!["id"]!.GetValue<string>());

        // Warm-up: the encoder made and JIT-compiled on both sides.
        await EmbedAsync(miniLm, chunks.Take(2).ToList());
        await IngestAsync(http, texts.Take(2).ToList(), "warm-up");

        var direct = new List<double>();
        var service = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            direct.Add(total / await EmbedAsync(miniLm, chunks));
            var (seconds, ingested) = await IngestAsync(http, texts, $"run {run + 1}");
            if (ingested != total)
            {
                throw new InvalidOperationException($"the service made {ingested} chunks of the documents; the chunker here made {total}");
            }
            service.Add(total / seconds);
            Console.Error.WriteLine($"knowledge-bench: run {run + 1}: MiniLM {direct[^1]:0.0} chunks/s, service {service[^1]:0.0} chunks/s");
        }
        var ratio = Stats.Median(service) / Stats.Median(direct);
        var report = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"""
            ### Ingestion throughput

            {documents} text documents ({texts.Sum(t => t.Length) / 1024.0:N0} KB), {total} chunks (default {defaults.DefaultChunkTokens} tokens, overlap {defaults.DefaultChunkOverlap}); median of {runs} runs.

            | path | chunks/s (median) | min | max |
            |---|---:|---:|---:|
            | MiniLM in-process, batches of {IngestionTaskHandler.EmbedBatch} per document (baseline) | {Stats.Median(direct):0.0} | {direct.Min():0.0} | {direct.Max():0.0} |
            | service: upload → every document `ready` | {Stats.Median(service):0.0} | {service.Min():0.0} | {service.Max():0.0} |

            Ratio service / raw embedding: {ratio:0.00} (goal ≥ 0.8) — {(ratio >= 0.8 ? "PASS" : "FAIL")}

            """));
        await Stats.WriteAsync(options.Report, report.ToString());
        return 0;
    }

    /// <summary>Seconds to embed every document's chunks, each document in the pipeline's batches.</summary>
    private static async Task<double> EmbedAsync(MiniLmEmbeddingGenerator miniLm, List<List<string>> chunks)
    {
        var started = Stopwatch.GetTimestamp();
        foreach (var batch in chunks.SelectMany(c => c.Chunk(IngestionTaskHandler.EmbedBatch)))
        {
            await miniLm.GenerateAsync(batch);
        }
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>Uploads the documents into a new collection; seconds until all are ready, and the chunks they made.</summary>
    private static async Task<(double Seconds, int Chunks)> IngestAsync(HttpClient http, List<string> texts, string name)
    {
        var collection = (await JsonAsync(await http.PostAsJsonAsync("/api/v1/collections", new { name = $"bench {name} {Guid.NewGuid():N}" })))["id"]!.GetValue<string>();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < texts.Count; i++)
        {
            using var form = new MultipartFormDataContent();
            var file = new ByteArrayContent(Encoding.UTF8.GetBytes(texts[i]));
            file.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
            form.Add(file, "file", $"document-{i + 1}.txt");
            await JsonAsync(await http.PostAsync($"/api/v1/collections/{collection}/documents", form));
        }
        while (true)
        {
            var (ready, chunks) = await CountAsync(http, collection, "ready");
            if (ready == texts.Count)
            {
                var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                await JsonAsync(await http.DeleteAsync($"/api/v1/collections/{collection}"), allowEmpty: true);
                return (seconds, chunks);
            }
            if ((await CountAsync(http, collection, "failed")).Documents > 0)
            {
                throw new InvalidOperationException($"a document of collection {collection} failed to ingest");
            }
            await Task.Delay(50);
        }
    }

    private static async Task<(int Documents, int Chunks)> CountAsync(HttpClient http, string collection, string status)
    {
        var (documents, chunks) = (0, 0);
        string? cursor = null;
        do
        {
            var page = await JsonAsync(await http.GetAsync($"/api/v1/collections/{collection}/documents?status={status}&limit=200{(cursor is null ? "" : $"&cursor={cursor}")}"));
            foreach (var item in page["items"]!.AsArray())
            {
                documents++;
                chunks += item!["chunkCount"]!.GetValue<int>();
            }
            cursor = page["nextCursor"]?.GetValue<string>();
        }
        while (cursor is not null);
        return (documents, chunks);
    }

    /// <summary>A report of paragraphs of made-up sentences, different for each number, the same in every run.</summary>
    private static string Document(int number, int paragraphs)
    {
        var random = new Random(number);
        var text = new StringBuilder($"Report {number}\n\n");
        for (var p = 0; p < paragraphs; p++)
        {
            for (var s = random.Next(3, 7); s > 0; s--)
            {
                var words = Enumerable.Range(0, random.Next(8, 21)).Select(_ => Words[random.Next(Words.Length)]).ToArray();
                words[0] = char.ToUpperInvariant(words[0][0]) + words[0][1..];
                text.Append(string.Join(' ', words)).Append(". ");
            }
            text.Append("\n\n");
        }
        return text.ToString();
    }

    private static async Task<string> TokenAsync(HttpClient http, string email, string password) =>
        (await JsonAsync(await http.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = email, ["password"] = password,
        }))))["access_token"]!.GetValue<string>();

    private static async Task<JsonNode> JsonAsync(HttpResponseMessage response, bool allowEmpty = false)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {(int)response.StatusCode} {body}");
            }
            return allowEmpty && body.Length == 0 ? new JsonObject() : JsonNode.Parse(body)!;
        }
    }
}
