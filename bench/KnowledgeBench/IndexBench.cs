using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using Agentry.Knowledge;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Agentry.KnowledgeBench;

/// <summary>
/// The embedded index as the service runs it: <see cref="UsearchVectorIndex"/> (upserts that save the file, queries under
/// the collection's read lock), on random unit vectors (uniform on the sphere, the hardest case for a graph index: no
/// clusters to follow). Exact answers come from brute-force cosine (dot products of unit vectors, SIMD through
/// TensorPrimitives, queries in parallel). Each expansion setting is measured on a fresh instance that loads the saved file,
/// as a restarted node does.
/// </summary>
internal static class IndexBench
{
    private const int Dimensions = 384;
    private const int K = 10;

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var count = options.Number("vectors", 100_000);
        var queries = options.Number("queries", 1_000);
        var batch = options.Number("batch", 10_000);
        var connectivity = options.Number("connectivity", new KnowledgeOptions().IndexConnectivity);
        var configured = options.Number("expansion-search", new KnowledgeOptions().IndexExpansionSearch);
        var runs = options.Number("runs", 3);
        var sweep = new[] { 64, 256, 512, 1024, 2048 }.Append(configured).Distinct().Order().ToArray();

        var random = new Random(42);
        var data = new float[(long)count * Dimensions];
        for (var i = 0; i < count; i++)
        {
            UnitVector(random, data.AsSpan(i * Dimensions, Dimensions));
        }
        var probes = Enumerable.Range(0, queries).Select(_ => UnitVector(random, new float[Dimensions])).ToArray();
        var directory = Path.Combine(Path.GetTempPath(), $"agentry-knowledge-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(directory);
        try
        {
            Console.Error.WriteLine($"knowledge-bench: exact top-{K} of {queries} queries over {count:N0} vectors");
            var exact = Stopwatch.StartNew();
            var truth = new HashSet<long>[queries];
            Parallel.For(0, queries, q => truth[q] = ExactTopK(data, count, probes[q]));
            var exactSeconds = exact.Elapsed.TotalSeconds;

            var collection = new VectorCollection(Guid.CreateVersion7(), Dimensions);
            var document = Guid.CreateVersion7();
            Console.Error.WriteLine($"knowledge-bench: building the index (connectivity {connectivity}, upserts of {batch:N0})");
            var build = Stopwatch.StartNew();
            using (var index = Open(directory, connectivity, configured))
            {
                for (var start = 0; start < count; start += batch)
                {
                    var records = Enumerable.Range(start, Math.Min(batch, count - start))
                        .Select(i => new VectorRecord(i + 1, document, data.AsSpan(i * Dimensions, Dimensions).ToArray())).ToList();
                    await index.UpsertAsync(collection, records, default);
                }
            }
            var buildSeconds = build.Elapsed.TotalSeconds;
            var fileBytes = new FileInfo(Directory.GetFiles(directory, "*.usearch").Single()).Length;

            var rows = new List<(int Expansion, double Recall, double P50, double P99)>();
            foreach (var expansion in sweep)
            {
                using var index = Open(directory, connectivity, expansion);
                var recalls = new List<double>();
                var p50 = new List<double>();
                var p99 = new List<double>();
                for (var run = 0; run < runs; run++)
                {
                    var (recall, latencies) = await QueryAllAsync(index, collection, probes, truth);
                    recalls.Add(recall);
                    p50.Add(Stats.Percentile(latencies, 0.50));
                    p99.Add(Stats.Percentile(latencies, 0.99));
                }
                rows.Add((expansion, Stats.Median(recalls), Stats.Median(p50), Stats.Median(p99)));
                Console.Error.WriteLine($"knowledge-bench: expansion {expansion}: recall@{K} {rows[^1].Recall:0.000}, p50 {rows[^1].P50:0.000} ms, p99 {rows[^1].P99:0.000} ms");
            }
            await Stats.WriteAsync(options.Report, Report(rows, configured, count, queries, connectivity, batch, runs, buildSeconds, exactSeconds, fileBytes));
            return 0;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static UsearchVectorIndex Open(string directory, int connectivity, int expansion) => new(
        Options.Create(new KnowledgeOptions { IndexDirectory = directory, IndexConnectivity = connectivity, IndexExpansionSearch = expansion }),
        NullLogger<UsearchVectorIndex>.Instance);

    /// <summary>Every query once, one at a time (warm-up: the first tenth, again); recall@K against the exact answers, and each query's latency in ms.</summary>
    private static async Task<(double Recall, List<double> Latencies)> QueryAllAsync(
        UsearchVectorIndex index, VectorCollection collection, float[][] probes, HashSet<long>[] truth)
    {
        for (var q = 0; q < probes.Length / 10; q++)
        {
            await index.QueryAsync(collection, probes[q], K, null, default);
        }
        var found = 0;
        var latencies = new List<double>(probes.Length);
        for (var q = 0; q < probes.Length; q++)
        {
            var started = Stopwatch.GetTimestamp();
            var matches = await index.QueryAsync(collection, probes[q], K, null, default);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            found += matches.Count(m => truth[q].Contains(m.Key));
        }
        return ((double)found / (probes.Length * K), latencies);
    }

    /// <summary>The keys (index + 1) of the K vectors most similar to the probe, by brute force.</summary>
    private static HashSet<long> ExactTopK(float[] data, int count, float[] probe)
    {
        var best = new (float Score, int Index)[K];
        Array.Fill(best, (float.NegativeInfinity, -1));
        for (var i = 0; i < count; i++)
        {
            var score = TensorPrimitives.Dot(data.AsSpan(i * Dimensions, Dimensions), probe);
            if (score <= best[K - 1].Score)
            {
                continue;
            }
            var at = K - 1;
            while (at > 0 && best[at - 1].Score < score)
            {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = (score, i);
        }
        return best.Select(b => (long)b.Index + 1).ToHashSet();
    }

    /// <summary>A uniformly random direction: normal coordinates, normalized.</summary>
    private static float[] UnitVector(Random random, float[] vector)
    {
        UnitVector(random, vector.AsSpan());
        return vector;
    }

    private static void UnitVector(Random random, Span<float> vector)
    {
        for (var i = 0; i < vector.Length; i++)
        {
            // Box-Muller: a standard normal from two uniforms.
            vector[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }
        var norm = TensorPrimitives.Norm(vector);
        TensorPrimitives.Divide(vector, norm, vector);
    }

    private static string Report(
        List<(int Expansion, double Recall, double P50, double P99)> rows, int configured, int count, int queries, int connectivity, int batch, int runs,
        double buildSeconds, double exactSeconds, long fileBytes)
    {
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"""
            ### Embedded index (USearch HNSW through UsearchVectorIndex)

            {count:N0} random unit {Dimensions}-d vectors, {queries:N0} random queries, top {K}; connectivity {connectivity}; median of {runs} runs per setting.
            Build: {count / buildSeconds:N0} vectors/s ({buildSeconds:0.0} s, upserts of {batch:N0}, each saving the index file; {fileBytes / 1048576.0:0} MB on disk).
            Exact search (brute-force cosine, all cores): {queries * 1000.0 / exactSeconds / 1000:0.0} queries/s.

            | expansion (search) | recall@{K} vs exact | p50 ms | p99 ms |
            |---:|---:|---:|---:|

            """));
        foreach (var row in rows)
        {
            var mark = row.Expansion == configured ? " (configured)" : "";
            text.Append(CultureInfo.InvariantCulture, $"| {row.Expansion}{mark} | {row.Recall:0.000} | {row.P50:0.000} | {row.P99:0.000} |\n");
        }
        var chosen = rows.Single(r => r.Expansion == configured);
        text.Append(CultureInfo.InvariantCulture,
            $"\nGoal recall@{K} ≥ 0.95 at the configured setting ({configured}): {chosen.Recall:0.000} — {(chosen.Recall >= 0.95 ? "PASS" : "FAIL")}\n");
        return text.ToString();
    }
}
