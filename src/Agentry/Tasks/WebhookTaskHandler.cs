using System.Text.Json;
using Agentry.Agents;

namespace Agentry.Tasks;

/// <summary>
/// Runs <c>webhook</c> agents: posts each task to the agent's URL (see <see cref="WebhookDelivery"/> for the
/// signature and the retry rules) and keeps the receiver's answer as the result. The idempotency key is the
/// task id, so a receiver can ignore a repeated delivery of the same task.
/// </summary>
internal sealed class WebhookTaskHandler(WebhookDelivery delivery) : ITaskHandler
{
    public const string TaskType = "task.run";

    public string Kind => AgentKinds.Webhook;

    public Task<JsonElement?> RunAsync(TaskRun run, CancellationToken cancellationToken)
    {
        var hook = run.Agent.Webhook ?? throw new TaskFailedException($"Agent '{run.AgentName}' has no webhook configured.", retryable: false);
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new WebhookTaskBody(TaskType, run.TaskId, run.AgentId, run.AgentVersion, run.AgentName, run.Attempt, run.MaxAttempts, run.Input),
            JsonSerializerOptions.Web);
        return delivery.PostAsync(hook, run.TaskId, run.TaskId.ToString(), body, cancellationToken);
    }
}

/// <summary>What a webhook agent's receiver gets.</summary>
internal sealed record WebhookTaskBody(
    string Type, Guid TaskId, Guid AgentId, int AgentVersion, string AgentName, int Attempt, int MaxAttempts, JsonElement Input);
