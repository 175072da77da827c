using System.Globalization;

namespace Agentry.Tests.Infrastructure;

/// <summary>Reading samples out of a <c>/metrics</c> scrape (Prometheus text: <c>name{labels} value</c> per line).</summary>
public static class PrometheusText
{
    /// <summary>The values of the samples whose line starts with <paramref name="name"/> and contains <paramref name="label"/>.</summary>
    public static IEnumerable<double> Samples(string text, string name, string label = "") =>
        text.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}
