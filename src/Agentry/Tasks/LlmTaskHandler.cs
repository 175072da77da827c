using System.ClientModel;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Chat;
using Agentry.Hosting;
using Agentry.Knowledge;
using Agentry.Models;
using Agentry.Tools;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>
/// Runs <c>llm</c> agents: the agent's system prompt and the task's input (see <see cref="LlmTaskInput"/>) go to the
/// agent's model with the tools it allows; while the model answers with tool calls, the tools run and their results go
/// back, one model call per step. The loop is our own rather than Microsoft.Extensions.AI's function-invoking client
/// because every step is checked against the agent's limits (steps, tokens, time), traced and reported as it happens.
/// A tool the agent may not call is never called (the model is told, the refusal audited); a call held for a person's
/// approval pauses the run with its state (see <see cref="LlmRunState"/>), which continues once the call is decided.
/// An agent that names knowledge collections gets the chunks that best match the task's message before its first step,
/// numbered for the model to cite; the result lists them as citations.
/// Exceeding a limit, an unknown model or tool, or an input the agent cannot take ends the task <c>dead</c>: a retry
/// would meet the same. A model or tool server that cannot be reached is retried. A model call is a reply like a
/// conversation's, so it takes the same settings (<c>Agentry:Chat</c>): at most <c>MaxReplyTokens</c> (never more than
/// half the model's window, nor what the agent's token limit leaves), its deltas batched by <c>FlushInterval</c> and
/// <c>FlushTokens</c>.
/// </summary>
internal sealed class LlmTaskHandler(
    ModelCatalog models, IAgentTools tools, IToolCatalog catalog, ApprovalGate gate, ConversationHistory history, KnowledgeRetrieval retrieval,
    TimeProvider clock, IOptions<ConversationOptions> options, ILogger<LlmTaskHandler> logger) : ITaskHandler
{
    /// <summary>
    /// How much longer than the agent's time limit its tasks' timeout is by default. The handler enforces the limit itself and
    /// ends the run naming it, for good; the task timeout, which retries, stays behind as the backstop. Were the two equal,
    /// the worker's timer (started first) would always win and the limit would never be the reason.
    /// </summary>
    public const int TimeLimitGraceSeconds = 10;

    public string Kind => AgentKinds.Llm;

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var input = LlmTaskInput.Parse(run.Input);
        var limit = run.Agent.Limits.TimeoutSeconds;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(limit), clock);
        using var token = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return JsonSerializer.SerializeToElement(await RunAsync(run, input, token.Token), JsonSerializerOptions.Web);
        }
        catch (Exception ex) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TaskFailedException(
                $"Time limit reached: agent '{run.AgentName}' may run for {limit} s (limits.timeoutSeconds), and this run took longer.", retryable: false, ex);
        }
    }

    private async Task<LlmRunResult> RunAsync(TaskRun run, List<ChatMessage> input, CancellationToken ct)
    {
        var limits = run.Agent.Limits;
        var model = await ModelAsync(run, ct);
        var functions = await ToolsAsync(run, model, ct);
        var held = functions.Count == 0 ? new HashSet<string>() : await HeldAsync(run, ct);
        // A run that paused for an approval continues from the state saved with it, once that is decided.
        var resumed = held.Count == 0 ? null : await gate.LatestAsync(run.TaskId, ct);
        var decision = resumed is { RunState: not null, Status: ApprovalStatus.Approved or ApprovalStatus.Denied } ? resumed : null;
        var state = decision is not null ? LlmRunState.Parse(decision.RunState!) : await StartAsync(run, input, ct);
        if (state.Pending is not null)
        {
            await FinishStepAsync(run, state, functions, held, decision, ct);
        }
        var stepTokens = history.ReplyTokens(model.Model);
        for (var step = state.Step + 1; ; step++)
        {
            var left = limits.MaxTokens - state.Usage.TotalTokens;
            if (left <= 0)
            {
                throw TokenLimit(run, state.Usage, step - 1);
            }
            var chat = new ChatOptions { MaxOutputTokens = (int)Math.Min(stepTokens, left), Tools = functions.Count > 0 ? [.. functions] : null };
            var sent = state.Messages.Count;
            var started = clock.GetTimestamp();
            var response = await CallAsync(run, model, state.Messages, chat, step, ct);
            var duration = clock.GetElapsedTime(started);
            var used = await UsageAsync(model, state.Messages, response, ct);
            state.Usage = state.Usage.Add(used);
            state.Messages.AddRange(response.Messages);
            state.Step = step;

            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
            var overTokens = state.Usage.TotalTokens > limits.MaxTokens;
            var overSteps = calls.Count > 0 && step >= limits.MaxSteps;
            state.Pending = new LlmPendingStep
            {
                MessagesOut = sent, Text = response.Text, FinishReason = response.FinishReason?.Value, InputTokens = used.InputTokens,
                OutputTokens = used.OutputTokens, DurationMs = (long)duration.TotalMilliseconds,
                Calls = calls,
                // Over a limit the calls are not run: after the last step there is no model call left to read their results.
                NotRun = overTokens || overSteps,
            };
            await FinishStepAsync(run, state, functions, held, decision: null, ct);
            if (overTokens)
            {
                throw TokenLimit(run, state.Usage, step);
            }
            if (calls.Count == 0)
            {
                return new LlmRunResult(response.Text, response.FinishReason?.Value, model.Model.Id, step, state.Usage, state.Trace,
                    CitationResponse.Of(state.Citations, response.Text));
            }
            if (overSteps)
            {
                throw new TaskFailedException(
                    $"Step limit reached: agent '{run.AgentName}' may call its model {limits.MaxSteps} times (limits.maxSteps), " +
                    $"and after the last the model still asked for tools ({string.Join(", ", calls.Select(c => c.Name))}).", retryable: false);
            }
        }
    }

    /// <summary>A new run's state: the system prompt, the sources the agent's collections hold on the message, the input.</summary>
    private async Task<LlmRunState> StartAsync(TaskRun run, List<ChatMessage> input, CancellationToken ct)
    {
        var query = input.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var retrieved = await retrieval.RetrieveAsync(run.WorkspaceId, run.Agent.KnowledgeCollections, query, ct);
        List<ChatMessage> messages = [];
        if (run.Agent.SystemPrompt is { Length: > 0 } system)
        {
            messages.Add(new ChatMessage(ChatRole.System, system));
        }
        if (retrieved.Context is { } context)
        {
            messages.Add(new ChatMessage(ChatRole.System, context));
        }
        messages.AddRange(input);
        return new LlmRunState { Messages = messages, Citations = [.. retrieved.Citations] };
    }

    /// <summary>
    /// Runs the pending step's remaining tool calls one after another, then records the step (trace and progress event)
    /// and gives the model the results. A held call without a decision pauses the run here (<see cref="TaskWaitingException"/>),
    /// with the state so far; <paramref name="decision"/> is the decision on the call the run paused at.
    /// </summary>
    private async Task FinishStepAsync(
        TaskRun run, LlmRunState state, IReadOnlyList<AIFunction> functions, IReadOnlySet<string> held, Approval? decision, CancellationToken ct)
    {
        var pending = state.Pending!;
        for (var i = pending.Results.Count; i < pending.Calls.Count && !pending.NotRun; i++)
        {
            var call = pending.Calls[i];
            ToolOutcome outcome;
            if (held.Contains(call.Name) && call.Exception is null && functions.Any(f => f.Name == call.Name))
            {
                if (decision is null || decision.CallId != call.CallId)
                {
                    throw new TaskWaitingException(new ApprovalRequest(call.Name, Arguments(call), call.CallId, state.ToJson()));
                }
                outcome = decision.Status == ApprovalStatus.Approved
                    ? await ApprovedAsync(run, decision, call, functions.First(f => f.Name == call.Name), ct)
                    : Failed(call, $"Error: a person {Denial(decision)}. The call was not made; do not try it again.", Denial(decision));
                decision = null;
            }
            else
            {
                outcome = await InvokeAsync(run, call, functions, ct);
            }
            pending.Results.Add(outcome.Content);
            pending.Traced.Add(outcome.Trace);
        }
        var record = pending.ToStep(state.Step, TracedCall);
        state.Trace.Add(record);
        await run.Progress.ReportAsync(record, ct);
        if (pending.Results.Count > 0)
        {
            state.Messages.Add(new ChatMessage(ChatRole.Tool, [.. pending.Results]));
        }
        state.Pending = null;
    }

    private static string Denial(Approval decision) => new ApprovalDecision(false, Guid.Empty, decision.DecidedByName ?? "a person", decision.Reason).Denial;

    /// <summary>The agent's tools whose calls wait for a person: those its definition holds, and those their server holds.</summary>
    private async Task<IReadOnlySet<string>> HeldAsync(TaskRun run, CancellationToken ct)
    {
        var held = new HashSet<string>(run.Agent.HeldTools, StringComparer.Ordinal);
        foreach (var name in run.Agent.AllowedTools)
        {
            if (!held.Contains(name) && ToolDescriptor.TrySplit(name, out var server, out var tool))
            {
                try
                {
                    if ((await catalog.FindAsync(run.WorkspaceId, server, tool, ct))?.RequiresApproval == true)
                    {
                        held.Add(name);
                    }
                }
                catch (DependencyUnavailableException ex)
                {
                    throw new TaskFailedException($"The agent's tools are unavailable: {ex.Message}", retryable: true, ex);
                }
            }
        }
        return held;
    }

    /// <summary>The approved call, made once (see <see cref="ApprovalGate.RunOnceAsync"/>); a failure is answered to the model as any tool's.</summary>
    private async Task<ToolOutcome> ApprovedAsync(TaskRun run, Approval approval, FunctionCallContent call, AIFunction function, CancellationToken ct)
    {
        try
        {
            var json = await gate.RunOnceAsync(approval, run, async token => JsonSerializer.Serialize(
                await function.InvokeAsync(new AIFunctionArguments(call.Arguments ?? new Dictionary<string, object?>()), token), AIJsonUtilities.DefaultOptions), ct);
            var value = JsonSerializer.Deserialize<JsonElement>(json);
            return new ToolOutcome(new FunctionResultContent(call.CallId, value), TracedResult(call, value));
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            TaskLog.ToolFailed(logger, run.TaskId, call.Name, ex);
            return Failed(call, "Error: the tool failed.", ex.Message);
        }
    }

    private static JsonElement Arguments(FunctionCallContent call) =>
        JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions);

    private async Task<ChatModel> ModelAsync(TaskRun run, CancellationToken ct)
    {
        if (run.Agent.Model is not { Length: > 0 } id)
        {
            throw new TaskFailedException($"Agent '{run.AgentName}' has no model.", retryable: false);
        }
        ChatModel? model;
        try
        {
            // Metered for the workspace and the agent (the ledger's agent key); the workspace's daily budget applies.
            model = await models.ResolveAsync(id, new ModelCaller(run.WorkspaceId, UserId: null, KeyId: null, AgentId: run.AgentId), ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            throw ModelFailed(id, ex);
        }
        return model ?? throw new TaskFailedException(
            $"Agent '{run.AgentName}' uses model '{id}', which no configured provider offers (GET /api/v1/models lists them).", retryable: false);
    }

    /// <summary>The tools the agent allows, all of them: one that no server offers would leave the agent without a means it was given.</summary>
    private async Task<IReadOnlyList<AIFunction>> ToolsAsync(TaskRun run, ChatModel model, CancellationToken ct)
    {
        var names = run.Agent.AllowedTools;
        if (names.Count == 0)
        {
            return [];
        }
        IReadOnlyList<AIFunction> found;
        try
        {
            found = await tools.FindAsync(new ToolCaller(run.WorkspaceId, null, null, run.AgentId, run.TaskId, ToolCaller.ViaAgent), names, ct);
        }
        catch (DependencyUnavailableException ex)
        {
            throw new TaskFailedException($"The agent's tools are unavailable: {ex.Message}", retryable: true, ex);
        }
        var offered = found.Where(f => names.Contains(f.Name, StringComparer.Ordinal)).ToList();
        var missing = names.Except(offered.Select(f => f.Name), StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new TaskFailedException(
                $"Agent '{run.AgentName}' allows tools that no connected tool server offers: {string.Join(", ", missing)}.", retryable: false);
        }
        if (model.Model.SupportsTools == false)
        {
            throw new TaskFailedException(
                $"Agent '{run.AgentName}' has tools, and its model '{model.Model.Id}' does not support tool calls.", retryable: false);
        }
        return offered;
    }

    /// <summary>One model call, streamed: its text goes to the task's events in batches as it comes.</summary>
    private async Task<ChatResponse> CallAsync(TaskRun run, ChatModel model, List<ChatMessage> messages, ChatOptions chat, int step, CancellationToken ct)
    {
        await using var deltas = new LlmDeltaBatch(run.Progress, step, options.Value, ct);
        var updates = new List<ChatResponseUpdate>();
        await using (var stream = model.Client.GetStreamingResponseAsync(messages, chat, ct).GetAsyncEnumerator(ct))
        {
            while (await NextAsync(stream, model, ct))
            {
                updates.Add(stream.Current);
                if (stream.Current.Text is { Length: > 0 } piece)
                {
                    deltas.Add(piece);
                }
            }
        }
        await deltas.FlushAsync();
        return updates.ToChatResponse();
    }

    private static async ValueTask<bool> NextAsync(IAsyncEnumerator<ChatResponseUpdate> stream, ChatModel model, CancellationToken ct)
    {
        try
        {
            return await stream.MoveNextAsync();
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            throw ModelFailed(model.Model.Id, ex);
        }
    }

    /// <summary>The step's tokens as the server reported them; estimated from the text (as conversations do) where it did not.</summary>
    private async Task<LlmUsage> UsageAsync(ChatModel model, List<ChatMessage> prompt, ChatResponse response, CancellationToken ct)
    {
        var (input, output) = (response.Usage?.InputTokenCount, response.Usage?.OutputTokenCount);
        if (input is null || output is null)
        {
            var counter = await history.CounterAsync(model.Model, ct);
            input ??= prompt.Sum(m => ConversationHistory.Cost(counter, m.Text));
            output ??= counter.Count(response.Text);
        }
        return new LlmUsage(input.Value, output.Value);
    }

    /// <summary>
    /// Runs one call. A tool that fails is answered with an error the model can read and react to; the message says only
    /// that it failed (tool errors may hold what the model should not see), the trace and the log say why. A tool the agent
    /// may not call (not on its allow-list, whatever the model claims) is never called: the model is told it does not
    /// exist, and the refusal is audited (<c>tool.refused</c>).
    /// </summary>
    private async Task<ToolOutcome> InvokeAsync(TaskRun run, FunctionCallContent call, IReadOnlyList<AIFunction> functions, CancellationToken ct)
    {
        var function = functions.FirstOrDefault(f => f.Name == call.Name);
        if (function is null)
        {
            var problem = $"There is no tool named '{call.Name}'.";
            await gate.RefusedAsync(run, call.Name, "not on the agent's allowedTools");
            return Failed(call, $"Error: {problem}", problem);
        }
        if (call.Exception is { } unreadable)
        {
            var problem = $"The arguments could not be read: {unreadable.Message}";
            return Failed(call, $"Error: {problem}", problem);
        }
        try
        {
            var value = await function.InvokeAsync(new AIFunctionArguments(call.Arguments ?? new Dictionary<string, object?>()), ct);
            return new ToolOutcome(new FunctionResultContent(call.CallId, value), TracedResult(call, value));
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            TaskLog.ToolFailed(logger, run.TaskId, call.Name, ex);
            return Failed(call, "Error: the tool failed.", ex.Message);
        }
    }

    private static ToolOutcome Failed(FunctionCallContent call, string toModel, string error) =>
        new(new FunctionResultContent(call.CallId, toModel), new LlmToolResult(call.CallId, call.Name, null, error));

    private static LlmToolCall TracedCall(FunctionCallContent call) =>
        new(call.CallId, call.Name, call.Arguments is null ? null : JsonSerializer.SerializeToElement(call.Arguments, AIJsonUtilities.DefaultOptions));

    private static LlmToolResult TracedResult(FunctionCallContent call, object? value)
    {
        var json = JsonSerializer.SerializeToElement(value, AIJsonUtilities.DefaultOptions);
        var raw = json.GetRawText();
        return raw.Length <= LlmToolResult.MaxTraceLength
            ? new LlmToolResult(call.CallId, call.Name, json, null)
            : new LlmToolResult(call.CallId, call.Name, JsonSerializer.SerializeToElement(raw[..LlmToolResult.MaxTraceLength]), null, Truncated: true);
    }

    private static TaskFailedException TokenLimit(TaskRun run, LlmUsage usage, int steps) => new(
        $"Token limit exceeded: agent '{run.AgentName}' may use {run.Agent.Limits.MaxTokens} tokens (limits.maxTokens), " +
        $"and its {steps} model call(s) used {usage.TotalTokens} ({usage.InputTokens} in, {usage.OutputTokens} out).", retryable: false);

    /// <summary>
    /// A server that cannot be reached or answers 5xx, a breaker that is open, a slow answer, a 408 or 429: the next
    /// attempt may succeed. A request the model refused (another 4xx, a prompt longer than its window) would be refused again.
    /// </summary>
    private static TaskFailedException ModelFailed(string model, Exception ex)
    {
        var refused = ex is ArgumentException
            || ex is HttpRequestException { StatusCode: { } status } && IsRefusal((int)status)
            || ex is ClientResultException { Status: var code } && IsRefusal(code);
        var unavailable = ex is DependencyUnavailableException || ModelEndpointPool.IsEndpointFailure(ex);
        var message = unavailable ? $"The server of model '{model}' is unavailable: {ex.Message}" : $"Model '{model}' failed: {ex.Message}";
        return new TaskFailedException(message, retryable: !refused, ex);
    }

    private static bool IsRefusal(int status) => status is >= 400 and < 500 and not 408 and not 429;

    private sealed record ToolOutcome(FunctionResultContent Content, LlmToolResult Trace);
}
