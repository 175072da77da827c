using System.Runtime.CompilerServices;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Tasks;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Sockets;

/// <summary>One event of a stream as a WebSocket client gets it: the same numbers, types and data as the SSE endpoints.</summary>
internal readonly record struct StreamEvent(long Seq, string Type, DateTime At, JsonElement? Data);

/// <summary>
/// The streams a connection can subscribe to, read through the same event log readers and <see cref="EventStreams.TailAsync"/>
/// as <c>GET /api/v1/tasks/{id}/events</c> and <c>GET /api/v1/conversations/{id}/events</c>, so any node serves them.
/// </summary>
internal static class SocketStreams
{
    public const string Task = "task";
    public const string Conversation = "conversation";

    /// <summary>
    /// The stream's events after <paramref name="after"/>, live; null when the workspace has no such task or conversation.
    /// A task's stream ends once the task is final and every event was read; a conversation's stays open for the
    /// exchanges to come.
    /// </summary>
    public static async Task<IAsyncEnumerable<StreamEvent>?> OpenAsync(
        AppDbContext db, EventSignal signal, string stream, Guid id, Guid workspaceId, long after, CancellationToken ct)
    {
        if (stream == Task)
        {
            var task = await db.Tasks.AsNoTracking().Where(t => t.Id == id && t.WorkspaceId == workspaceId).Select(t => new { t.CreatedAt }).FirstOrDefaultAsync(ct);
            return task is null ? null : Events(EventStreams.TailAsync(
                id, after, (last, token) => TaskEndpoints.ReadEventsAsync(db, id, task.CreatedAt, last, token),
                token => TaskEndpoints.IsFinalAsync(db, id, token), e => (e.Type, e.Seq), signal, ct), e => new StreamEvent(e.Seq, e.Type, e.At, e.Data));
        }
        if (!await db.Conversations.AnyAsync(c => c.Id == id && c.WorkspaceId == workspaceId, ct))
        {
            return null;
        }
        return Events(EventStreams.TailAsync(
            id, after, (last, token) => ConversationEndpoints.ReadEventsAsync(db, id, last, token),
            static _ => System.Threading.Tasks.Task.FromResult(false), e => (e.Type, e.Seq), signal, ct), e => new StreamEvent(e.Seq, e.Type, e.At, e.Data));
    }

    /// <summary>The 404 the HTTP endpoints answer for the stream's task or conversation, with the same words.</summary>
    public static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult NotFound(string stream, Guid id) =>
        stream == Task ? TaskEndpoints.NotFound(id) : ConversationEndpoints.NotFound(id);

    private static async IAsyncEnumerable<StreamEvent> Events<T>(
        IAsyncEnumerable<System.Net.ServerSentEvents.SseItem<T>> items, Func<T, StreamEvent> map, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var item in items.WithCancellation(ct))
        {
            yield return map(item.Data);
        }
    }
}
