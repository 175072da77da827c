using System.Text.Json;
using Agentry.Agents;
using Agentry.Hosting;
using Agentry.Tools;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Agentry.Tasks;

/// <summary>
/// Runs <c>tool</c> agents: automation without a model. The task's input is the arguments of the agent's one tool, called
/// through the catalog (schema check, timeout and audit as for every call) as the agent's task; the tool's result is the
/// task's result. A call held for approval (the server's <c>requireApproval</c> or the agent's <c>approvalTools</c>) waits
/// for a person; once approved it runs once (see <see cref="ApprovalGate.RunOnceAsync"/>). A tool that does not exist,
/// arguments its schema refuses and a tool that reports an error end the task <c>dead</c> (a retry would meet the same);
/// a timeout or an unreachable server is retried.
/// </summary>
internal sealed class ToolTaskHandler(IToolCatalog catalog, ApprovalGate gate) : ITaskHandler
{
    public string Kind => AgentKinds.Tool;

    public async Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var name = run.Agent.Tool ?? throw new TaskFailedException($"Tool agent '{run.AgentName}' names no tool.", retryable: false);
        var tool = await FindAsync(run, name, cancellationToken);
        if (run.Input.ValueKind != JsonValueKind.Object)
        {
            throw new TaskFailedException(
                $"The input of a tool agent's task is the arguments of '{name}': a JSON object, not {run.Input.ValueKind.ToString().ToLowerInvariant()}.", retryable: false);
        }
        string result;
        if (tool.RequiresApproval || run.Agent.HeldTools.Contains(name, StringComparer.Ordinal))
        {
            var approval = await gate.LatestAsync(run.TaskId, cancellationToken);
            switch (approval?.Status)
            {
                case null or ApprovalStatus.Cancelled:
                    throw new TaskWaitingException(new ApprovalRequest(name, run.Input, $"task-{run.TaskId}", RunState: null));
                case ApprovalStatus.Denied:
                    throw new TaskFailedException($"The call of '{name}' was denied by {approval.DecidedByName}: {approval.Reason}", retryable: false);
                case ApprovalStatus.Pending:
                    throw new TaskFailedException($"Approval {approval.Id} is still pending; the task cannot run before it is decided.", retryable: false);
            }
            result = await gate.RunOnceAsync(approval, run, ct => CallAsync(run, tool, ct), cancellationToken);
        }
        else
        {
            result = await CallAsync(run, tool, cancellationToken);
        }
        var outcome = JsonSerializer.Deserialize<CallToolResult>(result, McpJsonUtilities.DefaultOptions)!;
        if (outcome.IsError == true)
        {
            var text = string.Join("\n", outcome.Content.OfType<TextContentBlock>().Select(t => t.Text));
            throw new TaskFailedException($"Tool '{name}' reported an error: {(text.Length > 0 ? text : "(no text)")}", retryable: false);
        }
        return JsonSerializer.SerializeToElement(outcome, McpJsonUtilities.DefaultOptions);
    }

    private async Task<ToolDescriptor> FindAsync(TaskRun run, string name, CancellationToken ct)
    {
        if (!ToolDescriptor.TrySplit(name, out var server, out var tool))
        {
            throw new TaskFailedException($"'{name}' is not a qualified tool name ({{server}}__{{tool}}).", retryable: false);
        }
        try
        {
            return await catalog.FindAsync(run.WorkspaceId, server, tool, ct) ?? throw new TaskFailedException(
                $"Tool agent '{run.AgentName}' calls '{name}', and no server of this workspace offers it (GET /api/v1/tools lists the tools).", retryable: false);
        }
        catch (DependencyUnavailableException ex)
        {
            throw new TaskFailedException($"The server of tool '{name}' is unavailable: {ex.Message}", retryable: true, ex);
        }
    }

    /// <summary>The call, as the agent's task; its result as JSON (stored as an approved call's result before it is read).</summary>
    private async Task<string> CallAsync(TaskRun run, ToolDescriptor tool, CancellationToken ct)
    {
        try
        {
            var result = await catalog.CallAsync(tool, run.Input, new ToolCaller(run.WorkspaceId, null, null, run.AgentId, run.TaskId, ToolCaller.ViaAgent), ct);
            return JsonSerializer.Serialize(result, McpJsonUtilities.DefaultOptions);
        }
        catch (ToolArgumentsException ex)
        {
            var errors = string.Join("; ", ex.Errors.Select(e => $"{(e.Key.Length > 0 ? e.Key : "(root)")}: {string.Join(", ", e.Value)}"));
            throw new TaskFailedException($"The input does not match the input schema of '{tool.QualifiedName}': {errors}", retryable: false, ex);
        }
        catch (TimeoutException ex)
        {
            throw new TaskFailedException($"Tool '{tool.QualifiedName}' did not answer in time: {ex.Message}", retryable: true, ex);
        }
        catch (DependencyUnavailableException ex)
        {
            throw new TaskFailedException($"The server of tool '{tool.QualifiedName}' is unavailable: {ex.Message}", retryable: true, ex);
        }
    }
}
