using System.Security.Cryptography;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Agentry.Tests.Deploy;

/// <summary>
/// The files under <c>deploy/</c>, read from the checkout: the compose file (YAML merge keys resolved, as Compose does),
/// its variables from <c>.env.example</c>, and the PromQL of the alert rules and the dashboard.
/// </summary>
internal static partial class DeployFiles
{
    public static string Directory { get; } = Path.Combine(RepositoryRoot(), "deploy");

    public static string Read(params string[] path) => File.ReadAllText(Path.Combine([Directory, .. path]));

    /// <summary>A YAML document as nested dictionaries, lists and strings; <c>&lt;&lt;</c> merges applied.</summary>
    public static Dictionary<object, object> Yaml(params string[] path) =>
        new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(new StringReader(Read(path)))));

    public static Dictionary<string, Dictionary<object, object>> Services() =>
        Map(Yaml("docker-compose.yml")["services"]).ToDictionary(s => (string)s.Key, s => Map(s.Value));

    public static Dictionary<object, object> Map(object? node) => Assert.IsType<Dictionary<object, object>>(node);

    public static List<object> List(object? node) => Assert.IsType<List<object>>(node);

    /// <summary>A service's environment (the mapping form), values as Compose would read them before substitution.</summary>
    public static Dictionary<string, string> Environment(Dictionary<object, object> service) =>
        service.TryGetValue("environment", out var env) ? Map(env).ToDictionary(e => (string)e.Key, e => (string)e.Value) : [];

    /// <summary>The containers of the Agentry image (nodes and one-shot jobs).</summary>
    public static Dictionary<string, Dictionary<object, object>> AgentryServices() =>
        Services().Where(s => s.Value.TryGetValue("image", out var image) && ((string)image).StartsWith("agentry:", StringComparison.Ordinal))
            .ToDictionary(s => s.Key, s => s.Value);

    /// <summary>The variables of <c>.env.example</c>.</summary>
    public static Dictionary<string, string> EnvExample() =>
        Read(".env.example").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    /// <summary>The variables a text refers to as <c>${NAME}</c>, <c>${NAME:-default}</c> or <c>${NAME:?message}</c>.</summary>
    public static HashSet<string> Variables(string text) => [.. VariablePattern().Matches(text).Select(m => m.Groups["name"].Value)];

    /// <summary>
    /// Substitutes variables as Compose does, from <c>.env.example</c> with its <c>change-me</c> placeholders replaced by
    /// values of the kind they ask for (a password; the base64 of 32 bytes), as an operator following it would.
    /// </summary>
    public static string Substitute(string value, IReadOnlyDictionary<string, string> example) =>
        VariablePattern().Replace(value, m =>
        {
            var name = m.Groups["name"].Value;
            Assert.True(example.TryGetValue(name, out var given), $"${{{name}}} is not in deploy/.env.example");
            return given switch
            {
                "change-me-base64-32-bytes" => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                "change-me" => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)),
                _ => given,
            };
        });

    /// <summary>The PromQL of every alert rule.</summary>
    public static List<(string Name, string Expr)> AlertExpressions() =>
        [.. List(Yaml("prometheus", "alerts.yml")["groups"]).SelectMany(g => List(Map(g)["rules"])).Select(Map)
            .Select(r => ((string)r["alert"], (string)r["expr"]))];

    /// <summary>The PromQL of every dashboard panel's queries.</summary>
    public static List<(string Panel, string Expr)> DashboardExpressions()
    {
        using var dashboard = System.Text.Json.JsonDocument.Parse(Read("grafana", "dashboards", "agentry.json"));
        return [.. dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => (p.GetProperty("title").GetString()!, t.GetProperty("expr").GetString()!)))];
    }

    /// <summary>
    /// The series names a PromQL expression reads: string literals, label matchers, range selectors and grouping
    /// clauses removed, what remains is a series name unless it is a function (followed by a parenthesis) or a keyword.
    /// </summary>
    public static HashSet<string> SeriesNames(string promql)
    {
        var text = Regex.Replace(promql, "\"(?:[^\"\\\\]|\\\\.)*\"", "\"\"");
        text = Regex.Replace(text, @"\{[^}]*\}", " ");
        text = Regex.Replace(text, @"\[[^\]]*\]", " ");
        text = Regex.Replace(text, @"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ");
        return [.. Regex.Matches(text, @"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()").Select(m => m.Value).Where(n => !Keywords.Contains(n))];
    }

    private static readonly HashSet<string> Keywords = ["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "Inf", "NaN"];

    /// <summary>The sample names in Prometheus text (histograms give their _bucket, _sum and _count).</summary>
    public static HashSet<string> ExportedNames(string exposition) =>
        [.. exposition.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l[..l.IndexOfAny(['{', ' '])])];

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?<rest>[:?-][^}]*)?\}")]
    private static partial Regex VariablePattern();

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Agentry.slnx")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No Agentry.slnx above {AppContext.BaseDirectory}: the deploy tests read the checkout's deploy/ folder.");
    }
}
