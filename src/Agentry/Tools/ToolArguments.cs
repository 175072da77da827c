using System.Collections.Concurrent;
using System.Text.Json;
using Json.Schema;

namespace Agentry.Tools;

/// <summary>
/// Checks a call's arguments against the tool's input schema with JsonSchema.Net. Built schemas are kept by their text
/// (a server's list rarely changes), each in a registry of its own so two servers' schemas with the same <c>$id</c> never meet.
/// </summary>
internal static class ToolArguments
{
    private const int MaxCached = 2_000;
    private static readonly ConcurrentDictionary<string, JsonSchema> Schemas = new();
    private static readonly EvaluationOptions Evaluation = new() { OutputFormat = OutputFormat.List };

    /// <summary>Failing locations (<c>arguments</c> plus the JSON pointer into them) and what is wrong at each; empty when valid.</summary>
    public static Dictionary<string, string[]> Check(ToolDescriptor tool, JsonElement arguments)
    {
        var errors = new Dictionary<string, string[]>();
        if (arguments.ValueKind != JsonValueKind.Object)
        {
            errors["arguments"] = ["The arguments must be a JSON object."];
            return errors;
        }
        var results = SchemaOf(tool.InputSchema).Evaluate(arguments, Evaluation);
        if (results.IsValid)
        {
            return errors;
        }
        foreach (var detail in results.Details ?? [])
        {
            if (detail.IsValid || detail.Errors is not { Count: > 0 } messages)
            {
                continue;
            }
            var location = "arguments" + detail.InstanceLocation;
            errors[location] = [.. errors.GetValueOrDefault(location, []).Concat(messages.Values).Distinct()];
        }
        if (errors.Count == 0)
        {
            errors["arguments"] = ["The arguments do not match the tool's input schema."];
        }
        return errors;
    }

    /// <summary>The names of the arguments (never their values), for the audit trail.</summary>
    public static string[] NamesOf(JsonElement arguments) =>
        arguments.ValueKind == JsonValueKind.Object ? [.. arguments.EnumerateObject().Select(p => p.Name)] : [];

    private static JsonSchema SchemaOf(JsonElement schema)
    {
        var text = schema.GetRawText();
        if (Schemas.TryGetValue(text, out var built))
        {
            return built;
        }
        if (Schemas.Count >= MaxCached)
        {
            Schemas.Clear();
        }
        built = JsonSchema.Build(schema.Clone(), new BuildOptions { SchemaRegistry = new SchemaRegistry() },
            new Uri($"urn:agentry:tool-schema:{Guid.NewGuid():N}"));
        return Schemas.GetOrAdd(text, built);
    }
}
