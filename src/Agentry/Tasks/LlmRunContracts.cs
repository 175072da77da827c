using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Agentry.Chat;
using Agentry.Knowledge;

namespace Agentry.Tasks;

/// <summary>
/// The result of an <c>llm</c> agent's task: the final answer, why the model stopped, the model, how many model calls
/// it took, the tokens they used together, the trace of every step, and the knowledge chunks its prompt held
/// (<c>cited</c>: the answer refers to it as <c>[n]</c>).
/// </summary>
public sealed record LlmRunResult(
    string Text, string? FinishReason, string Model, int Steps, LlmUsage Usage, IReadOnlyList<LlmStep> Trace, IReadOnlyList<CitationResponse>? Citations = null);

/// <summary>Tokens as the model server counted them (estimated from the text where it reported none).</summary>
public sealed record LlmUsage(long InputTokens, long OutputTokens)
{
    public long TotalTokens => InputTokens + OutputTokens;

    public LlmUsage Add(LlmUsage other) => new(InputTokens + other.InputTokens, OutputTokens + other.OutputTokens);
}

/// <summary>
/// One model call: how many messages went out, the text and tool calls that came back, what the tools answered, the
/// tokens and how long the call took. Each is also a <c>progress</c> event of the task (<c>type</c> <c>step</c>).
/// </summary>
public sealed record LlmStep(
    int Step, int MessagesOut, string Text, IReadOnlyList<LlmToolCall> ToolCalls, IReadOnlyList<LlmToolResult> ToolResults,
    string? FinishReason, long InputTokens, long OutputTokens, long DurationMs)
{
    [JsonPropertyOrder(-1)]
    public string Type => "step";
}

public sealed record LlmToolCall(string Id, string Name, JsonElement? Arguments);

/// <summary>
/// What a tool answered (<see cref="Result"/>) or why it could not (<see cref="Error"/>). A result longer than
/// <see cref="LlmToolResult.MaxTraceLength"/> characters is kept here cut, as a string, and marked <see cref="Truncated"/>;
/// the model got all of it.
/// </summary>
public sealed record LlmToolResult(string CallId, string Name, JsonElement? Result, string? Error, bool Truncated = false)
{
    public const int MaxTraceLength = 4_000;
}

/// <summary>Text the model wrote during a step, as a <c>progress</c> event of the task (<c>type</c> <c>delta</c>).</summary>
public sealed record LlmDelta(int Step, string Text)
{
    [JsonPropertyOrder(-1)]
    public string Type => "delta";
}

/// <summary>
/// A step's text deltas on their way to the task's event log, batched as a conversation's reply deltas are: a loop writes
/// what waits as one event every <see cref="ConversationOptions.FlushInterval"/>, or at once when
/// <see cref="ConversationOptions.FlushTokens"/> deltas wait, so a watcher sees the text as it comes (also when the model
/// pauses) without a database write per token, and the model's stream never waits for a write.
/// </summary>
internal sealed class LlmDeltaBatch : IAsyncDisposable
{
    private readonly ITaskProgress _progress;
    private readonly int _step;
    private readonly ConversationOptions _options;
    private readonly CancellationToken _run;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private StringBuilder _text = new();
    private int _pending;

    public LlmDeltaBatch(ITaskProgress progress, int step, ConversationOptions options, CancellationToken run)
    {
        (_progress, _step, _options, _run) = (progress, step, options, run);
        _loop = Task.Run(LoopAsync);
    }

    public void Add(string piece)
    {
        bool full;
        lock (_lock)
        {
            _text.Append(piece);
            full = ++_pending == _options.FlushTokens;
        }
        if (full)
        {
            _wake.Release();
        }
    }

    /// <summary>Stops the loop and writes what still waits; a failure to write it fails the step.</summary>
    public async ValueTask FlushAsync()
    {
        await StopAsync();
        await WriteAsync();
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_options.FlushInterval, _stop.Token);
                await WriteAsync();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception)
            {
                // The text went back to the batch: the next write tries again, and the last one (FlushAsync) reports a failure.
            }
        }
    }

    /// <summary>Writes with the run's token, never the loop's: stopping the loop must not cut a write in half.</summary>
    private async Task WriteAsync()
    {
        StringBuilder text;
        lock (_lock)
        {
            if (_pending == 0)
            {
                return;
            }
            (text, _text, _pending) = (_text, new StringBuilder(), 0);
        }
        try
        {
            await _progress.ReportAsync(new LlmDelta(_step, text.ToString()), _run);
        }
        catch
        {
            lock (_lock)
            {
                _text.Insert(0, text);
                _pending++;
            }
            throw;
        }
    }

    private async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
        _wake.Dispose();
    }
}
