using System.Text.Json;
using Agentry.Data;
using Agentry.Tasks;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Knowledge;

/// <summary>
/// A document follows its ingestion task into an end the handler did not write: a task cancelled before it ran or while
/// running, or dead after its last lease lapsed or its last attempt timed out, leaves the document <c>failed</c> at the
/// step it had reached, with the task's reason as its error, instead of <c>queued</c> or <c>processing</c> for ever. Only
/// the document's current task counts (a newer ingestion that took it over is left alone), and only a document still
/// waiting or running: one the handler already marked failed keeps its own error.
/// </summary>
internal sealed class IngestionTaskEnds(TimeProvider clock) : ITaskEndHook
{
    public string Kind => IngestionTaskHandler.AgentKind;

    public async Task EndedAsync(AppDbContext db, IReadOnlyList<Guid> ended, CancellationToken ct)
    {
        var tasks = await db.Tasks.AsNoTracking()
            .Where(t => ended.Contains(t.Id) && t.Kind == IngestionTaskHandler.AgentKind
                && (t.Status == AgentTaskStatus.Cancelled || t.Status == AgentTaskStatus.Dead))
            .Select(t => new { t.Id, t.Status, t.Reason, t.Input })
            .ToListAsync(ct);
        foreach (var task in tasks)
        {
            if (JsonSerializer.Deserialize<IngestionInput>(task.Input, JsonSerializerOptions.Web) is not { } input)
            {
                continue;
            }
            var error = task.Status == AgentTaskStatus.Cancelled
                ? $"The ingestion was cancelled: {task.Reason}"
                : $"The ingestion ended without finishing: {task.Reason}";
            await db.KnowledgeDocuments
                .Where(d => d.Id == input.DocumentId && d.TaskId == task.Id
                    && (d.Status == DocumentStatuses.Queued || d.Status == DocumentStatuses.Processing))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(d => d.Status, DocumentStatuses.Failed)
                    .SetProperty(d => d.FailedStep, d => d.StepsDone == 0 ? IngestionSteps.Extract
                        : d.StepsDone == 1 ? IngestionSteps.Chunk
                        : d.StepsDone == 2 ? IngestionSteps.Embed
                        : IngestionSteps.Index)
                    .SetProperty(d => d.Error, error)
                    .SetProperty(d => d.UpdatedAt, clock.UtcNow()), ct);
        }
    }
}
