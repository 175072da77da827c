using System.Globalization;
using Agentry.KnowledgeBench;

// Usage:
//   Agentry.KnowledgeBench index  [--vectors N] [--queries Q] [--batch B] [--connectivity M] [--expansion-search E] [--runs R] [--report FILE]
//   Agentry.KnowledgeBench ingest --url URL --email E --password P [--documents D] [--paragraphs P] [--runs R] [--report FILE]
// `index`: the production embedded index (UsearchVectorIndex) on random unit 384-d vectors: build rate, recall@10 against
// exact brute-force cosine search, p50/p99 query latency. `ingest`: chunks/s of the in-process MiniLM generator on the
// chunks the pipeline makes (batched as the pipeline batches) against chunks/s of end-to-end ingestion through the service.
return args switch
{
    ["index", .. var rest] => await IndexBench.RunAsync(BenchOptions.Parse(rest)),
    ["ingest", .. var rest] => await IngestBench.RunAsync(BenchOptions.Parse(rest)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Agentry.KnowledgeBench index [--vectors N] [--queries Q] [--batch B] [--connectivity M] [--expansion-search E] [--runs R] [--report FILE]");
    Console.Error.WriteLine("       Agentry.KnowledgeBench ingest --url URL --email E --password P [--documents D] [--paragraphs P] [--runs R] [--report FILE]");
    return 2;
}

namespace Agentry.KnowledgeBench
{
    internal sealed class BenchOptions(Dictionary<string, string> values)
    {
        public static BenchOptions Parse(string[] args)
        {
            var values = new Dictionary<string, string>();
            for (var i = 0; i + 1 < args.Length; i += 2)
            {
                values[args[i].TrimStart('-')] = args[i + 1];
            }
            return new BenchOptions(values);
        }

        public string Required(string key) => values.TryGetValue(key, out var v) ? v : throw new ArgumentException($"--{key} is required");

        public int Number(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public string? Report => values.GetValueOrDefault("report");
    }

    internal static class Stats
    {
        public static double Median(IEnumerable<double> values) => Percentile(values, 0.5);

        /// <summary>The nearest-rank percentile (p in 0..1) of the values.</summary>
        public static double Percentile(IEnumerable<double> values, double p)
        {
            var sorted = values.Order().ToArray();
            if (sorted.Length == 0)
            {
                return double.NaN;
            }
            if (p == 0.5 && sorted.Length % 2 == 0)
            {
                return (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
            }
            return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        }

        public static async Task WriteAsync(string? path, string report)
        {
            Console.Out.Write(report);
            if (path is not null)
            {
                await File.WriteAllTextAsync(path, report);
            }
        }
    }
}
