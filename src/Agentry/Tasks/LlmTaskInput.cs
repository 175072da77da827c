using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Agentry.Tasks;

/// <summary>
/// What a task gives an <c>llm</c> agent, as the messages that follow the agent's system prompt. Three forms:
/// <list type="bullet">
/// <item>a JSON string: one user message;</item>
/// <item><c>{"message": "…"}</c>: one user message;</item>
/// <item><c>{"messages": [{"role": "user" | "assistant", "content": "…"}, …]}</c>: a conversation so far, oldest first,
/// ending with a user message.</item>
/// </list>
/// Other properties of the object are ignored, so a schedule's template can carry its own notes. The system prompt is the
/// agent's alone: a task cannot send one. Anything else is refused before a model is asked, naming what is wrong: a retry
/// would bring the same input, so the task ends <c>dead</c> at once.
/// </summary>
internal static class LlmTaskInput
{
    public const string Forms = """a JSON string, {"message": "…"} or {"messages": [{"role": "user", "content": "…"}]}""";

    public static List<ChatMessage> Parse(JsonElement input) => input.ValueKind switch
    {
        JsonValueKind.String => [User(input, "input")],
        JsonValueKind.Object => FromObject(input),
        _ => throw Malformed($"the input is {Describe(input)}"),
    };

    private static List<ChatMessage> FromObject(JsonElement input)
    {
        var hasMessage = input.TryGetProperty("message", out var message);
        var hasMessages = input.TryGetProperty("messages", out var messages);
        if (hasMessage == hasMessages)
        {
            throw Malformed(hasMessage ? "it has both 'message' and 'messages'; send one" : "the object has neither 'message' nor 'messages'");
        }
        if (hasMessage)
        {
            return [User(message, "message")];
        }
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw Malformed($"'messages' must be a non-empty array, not {Describe(messages)}");
        }
        var list = new List<ChatMessage>();
        foreach (var (item, i) in messages.EnumerateArray().Select((m, i) => (m, i)))
        {
            var field = $"messages[{i}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Malformed($"'{field}' must be an object with 'role' and 'content', not {Describe(item)}");
            }
            var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (role is not ("user" or "assistant"))
            {
                throw Malformed($"'{field}.role' must be \"user\" or \"assistant\"");
            }
            if (!item.TryGetProperty("content", out var content))
            {
                throw Malformed($"'{field}.content' is missing");
            }
            list.Add(new ChatMessage(role == "user" ? ChatRole.User : ChatRole.Assistant, Text(content, $"{field}.content")));
        }
        if (list[^1].Role != ChatRole.User)
        {
            throw Malformed("the last of 'messages' must be a user message, for the agent to answer");
        }
        return list;
    }

    private static ChatMessage User(JsonElement text, string field) => new(ChatRole.User, Text(text, field));

    private static string Text(JsonElement value, string field)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            throw Malformed($"'{field}' must be a string, not {Describe(value)}");
        }
        var text = value.GetString()!;
        return string.IsNullOrWhiteSpace(text) ? throw Malformed($"'{field}' is empty") : text;
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static TaskFailedException Malformed(string problem) =>
        new($"The input is not one an llm agent takes: {problem}. Send {Forms}.", retryable: false);
}
