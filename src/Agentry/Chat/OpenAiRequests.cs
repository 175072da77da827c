using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.AI;

namespace Agentry.Chat;

/// <summary>An OpenAI chat request read into Microsoft.Extensions.AI messages and options, or the 400 that says what is wrong with it.</summary>
internal static class OpenAiRequests
{
    private const int MaxStopSequences = 4;

    public static ProblemHttpResult? Read(OpenAiChatRequest request, out List<ChatMessage> messages, out ChatOptions options)
    {
        messages = [];
        options = new ChatOptions();
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            return OpenAiErrors.Invalid("model", "The request names no model; GET /v1/models lists them.");
        }
        if (request.Messages is not { Count: > 0 })
        {
            return OpenAiErrors.Invalid("messages", "The request needs at least one message.");
        }
        for (var i = 0; i < request.Messages.Count; i++)
        {
            if (Message(request.Messages[i], $"messages[{i}]", out var message) is { } invalid)
            {
                return invalid;
            }
            messages.Add(message);
        }
        if (request.N is not (null or 1))
        {
            return OpenAiErrors.Invalid("n", "Only one choice per request is offered: n must be 1.");
        }
        if (request.Temperature is < 0 or > 2)
        {
            return OpenAiErrors.Invalid("temperature", "temperature must be between 0 and 2.");
        }
        if (request.TopP is <= 0 or > 1)
        {
            return OpenAiErrors.Invalid("top_p", "top_p must be greater than 0 and at most 1.");
        }
        if (request.FrequencyPenalty is < -2 or > 2 || request.PresencePenalty is < -2 or > 2)
        {
            return OpenAiErrors.Invalid(request.FrequencyPenalty is < -2 or > 2 ? "frequency_penalty" : "presence_penalty", "Penalties must be between -2 and 2.");
        }
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1)
        {
            return OpenAiErrors.Invalid(request.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens", "The token limit must be at least 1.");
        }
        if (Stops(request.Stop, out var stops) is { } badStop)
        {
            return badStop;
        }
        options = new ChatOptions
        {
            Temperature = request.Temperature,
            TopP = request.TopP,
            MaxOutputTokens = maxTokens,
            StopSequences = stops,
            Seed = request.Seed,
            FrequencyPenalty = request.FrequencyPenalty,
            PresencePenalty = request.PresencePenalty,
        };
        return null;
    }

    private static ProblemHttpResult? Message(OpenAiMessage message, string field, out ChatMessage read)
    {
        read = null!;
        ChatRole? role = message.Role switch
        {
            "system" or "developer" => ChatRole.System,
            "user" => ChatRole.User,
            "assistant" => ChatRole.Assistant,
            _ => null,
        };
        if (role is null)
        {
            return OpenAiErrors.Invalid($"{field}.role", $"The role '{message.Role}' is not one of system, developer, user, assistant (tools come later).");
        }
        if (Text(message.Content) is not { } text)
        {
            return OpenAiErrors.Invalid($"{field}.content", "The content must be a string or an array of parts of type 'text'.");
        }
        read = new ChatMessage(role.Value, text) { AuthorName = message.Name };
        return null;
    }

    /// <summary>A string, or the concatenated text of an array of <c>{"type": "text", "text": …}</c> parts; null for anything else.</summary>
    private static string? Text(JsonElement? content)
    {
        switch (content)
        {
            case { ValueKind: JsonValueKind.String } text:
                return text.GetString();
            case { ValueKind: JsonValueKind.Array } parts:
                var joined = new StringBuilder();
                foreach (var part in parts.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object
                        || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"
                        || !part.TryGetProperty("text", out var value) || value.ValueKind != JsonValueKind.String)
                    {
                        return null;
                    }
                    joined.Append(value.GetString());
                }
                return joined.ToString();
            default:
                return null;
        }
    }

    private static ProblemHttpResult? Stops(JsonElement? stop, out List<string>? stops)
    {
        stops = stop switch
        {
            null or { ValueKind: JsonValueKind.Null } => null,
            { ValueKind: JsonValueKind.Array } none when none.GetArrayLength() == 0 => null,
            { ValueKind: JsonValueKind.String } one => [one.GetString()!],
            { ValueKind: JsonValueKind.Array } many when many.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String) =>
                [.. many.EnumerateArray().Select(s => s.GetString()!)],
            _ => [],
        };
        return stops is { Count: 0 } or { Count: > MaxStopSequences } || stops?.Any(s => s.Length == 0) == true
            ? OpenAiErrors.Invalid("stop", $"stop must be a non-empty string or an array of 1 to {MaxStopSequences} non-empty strings.")
            : null;
    }
}
