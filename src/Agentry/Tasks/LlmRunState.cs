using System.Text.Json;
using Agentry.Knowledge;
using Microsoft.Extensions.AI;

namespace Agentry.Tasks;

/// <summary>
/// Where an <c>llm</c> run stands: the conversation so far, the trace and usage, the step, and the step whose tool calls
/// are being run (<see cref="Pending"/>). Saved with an approval when a held call pauses the run, and read back when the
/// task runs again, so the run continues where it stopped instead of starting over (and the calls made before the pause
/// are not made again). Serialized with <see cref="AIJsonUtilities.DefaultOptions"/>, which knows every chat content type.
/// </summary>
internal sealed class LlmRunState
{
    public List<ChatMessage> Messages { get; set; } = [];
    public List<LlmStep> Trace { get; set; } = [];
    public LlmUsage Usage { get; set; } = new(0, 0);

    /// <summary>The last step that called the model.</summary>
    public int Step { get; set; }

    public LlmPendingStep? Pending { get; set; }

    /// <summary>The knowledge chunks the run's prompt holds, numbered as the model cites them.</summary>
    public List<Citation> Citations { get; set; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, AIJsonUtilities.DefaultOptions);

    public static LlmRunState Parse(string json) => JsonSerializer.Deserialize<LlmRunState>(json, AIJsonUtilities.DefaultOptions)!;
}

/// <summary>A step whose model call is done and whose tool calls run one by one: what the step's trace records, and the results so far.</summary>
internal sealed class LlmPendingStep
{
    public int MessagesOut { get; set; }
    public string Text { get; set; } = "";
    public string? FinishReason { get; set; }
    public long InputTokens { get; set; }
    public long OutputTokens { get; set; }
    public long DurationMs { get; set; }
    public List<FunctionCallContent> Calls { get; set; } = [];

    /// <summary>The step went over a limit: its calls are traced but not run.</summary>
    public bool NotRun { get; set; }

    public List<FunctionResultContent> Results { get; set; } = [];
    public List<LlmToolResult> Traced { get; set; } = [];

    public LlmStep ToStep(int step, Func<FunctionCallContent, LlmToolCall> traced) =>
        new(step, MessagesOut, Text, [.. Calls.Select(traced)], Traced, FinishReason, InputTokens, OutputTokens, DurationMs);
}
