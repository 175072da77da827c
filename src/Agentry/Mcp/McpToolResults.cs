using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ModelContextProtocol.Protocol;

namespace Agentry.Mcp;

/// <summary>
/// Tool results as MCP clients read them: a JSON answer as text (what a model reads) and as structured content (what a
/// program reads); a refusal or failure as a tool error (<c>isError</c>) whose text says what is wrong, so the assistant
/// can tell its user or correct its call, rather than a protocol error.
/// </summary>
internal static class McpToolResults
{
    public static CallToolResult Json<T>(T value, JsonSerializerOptions options)
    {
        var element = JsonSerializer.SerializeToElement(value, options);
        return new CallToolResult { Content = [new TextContentBlock { Text = element.GetRawText() }], StructuredContent = element };
    }

    public static CallToolResult Error(string message) =>
        new() { IsError = true, Content = [new TextContentBlock { Text = message }] };

    /// <summary>The problem a REST endpoint would have answered, as a tool error with the same words.</summary>
    public static CallToolResult Error(ProblemHttpResult problem) => Error(problem.ProblemDetails switch
    {
        HttpValidationProblemDetails { Errors.Count: > 0 } invalid =>
            "Invalid arguments: " + string.Join("; ", invalid.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")),
        var details => details.Detail ?? details.Title ?? $"Refused ({details.Status}).",
    });

    public static CallToolResult InvalidArguments(IEnumerable<KeyValuePair<string, string[]>> errors) =>
        Error("Invalid arguments: " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
}
