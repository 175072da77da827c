using System.Text;
using System.Text.Json;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Agentry.Chat;

/// <summary>The user message and reply an exchange stored, and the events that said so (the reply's started event is the last).</summary>
internal sealed record Exchange(Conversation Conversation, ConversationMessage Message, ConversationMessage Reply, IReadOnlyList<ConversationEvent> Events)
{
    public long StartedSeq => Events[^1].Seq;

    /// <summary>
    /// The message and reply rows as first written: copies taken before generation starts, because the run changes
    /// <see cref="Reply"/> as it goes and may do so before the rows are inserted.
    /// </summary>
    public IReadOnlyList<ConversationMessage> Rows { get; init; } = [];
}

/// <summary>
/// An exchange written in a transaction not yet committed: what else the transaction reads sees it (the prompt is built
/// from it), nothing outside does. Disposing it uncommitted rolls it back.
/// </summary>
internal sealed class PendingExchange(AppDbContext db, IDbContextTransaction transaction, Exchange exchange) : IAsyncDisposable
{
    public Exchange Exchange { get; } = exchange;

    public async Task CommitAsync(CancellationToken ct)
    {
        await transaction.CommitAsync(ct);
        db.ChangeTracker.Clear();
    }

    public ValueTask DisposeAsync() => transaction.DisposeAsync();
}

/// <summary>
/// Every write to a conversation's event log. Each one advances <see cref="Conversation.LastEventSeq"/> with a
/// conditional update in the transaction that inserts the events, so numbers never repeat or skip: an exchange may start
/// only when no reply is active, and while one is, only its generating node (or the sweeper, once the node's lease has
/// lapsed) may append, each expecting the number it last wrote. A writer that finds another number has lost the reply.
/// </summary>
internal sealed class ConversationStore(IServiceScopeFactory scopes, TimeProvider clock, IOptions<ConversationOptions> options)
{
    /// <summary>
    /// The exchange a new message makes, as it will be stored if <paramref name="conversation"/> (as read) is still as it
    /// was: the user message, a generating reply and their two events, numbered after its last event.
    /// </summary>
    public Exchange Prepare(Conversation conversation, string content, string model, Guid? actor, string? citations = null)
    {
        var now = clock.UtcNow();
        var (replyId, seq, count) = (Ids.New(), conversation.LastEventSeq + 2, conversation.MessageCount + 2);
        var current = new Conversation
        {
            Id = conversation.Id, WorkspaceId = conversation.WorkspaceId, Title = conversation.Title, Model = conversation.Model,
            AgentId = conversation.AgentId, SystemPrompt = conversation.SystemPrompt, KnowledgeCollections = conversation.KnowledgeCollections,
            LastEventSeq = seq, MessageCount = count,
            ActiveReplyId = replyId, CreatedAt = conversation.CreatedAt, UpdatedAt = now, CreatedBy = conversation.CreatedBy,
        };
        var message = new ConversationMessage
        {
            Id = Ids.New(), ConversationId = current.Id, Position = count - 1, Role = MessageRoles.User,
            Content = content, Status = MessageStatuses.Complete, CreatedBy = actor, CreatedAt = now, CompletedAt = now,
        };
        var reply = new ConversationMessage
        {
            Id = replyId, ConversationId = current.Id, Position = count, Role = MessageRoles.Assistant,
            Status = MessageStatuses.Generating, Model = model, StartSeq = seq, LeaseUntil = now + options.Value.ReplyLease,
            Citations = citations, CreatedBy = actor, CreatedAt = now,
        };
        ConversationEvent[] events =
        [
            ConversationContracts.Event(current.Id, seq - 1, ConversationEventTypes.Message, now, new MessageEventData(message.Id, message.Role, message.Content)),
            ConversationContracts.Event(current.Id, seq, ConversationEventTypes.ReplyStarted, now, new ReplyStartedData(reply.Id, model)),
        ];
        return new Exchange(current, message, reply, events) { Rows = [Copy(message), Copy(reply)] };
    }

    private static ConversationMessage Copy(ConversationMessage m) => new()
    {
        Id = m.Id, ConversationId = m.ConversationId, Position = m.Position, Role = m.Role, Content = m.Content, Status = m.Status,
        FinishReason = m.FinishReason, Error = m.Error, Model = m.Model, InputTokens = m.InputTokens, OutputTokens = m.OutputTokens,
        LeaseUntil = m.LeaseUntil, CancelRequested = m.CancelRequested, StartSeq = m.StartSeq, Citations = m.Citations, CreatedBy = m.CreatedBy,
        CreatedAt = m.CreatedAt, CompletedAt = m.CompletedAt,
    };

    /// <summary>
    /// Writes a prepared exchange in a transaction left open for the caller to commit; or null, with nothing written,
    /// when the conversation is no longer as it was read (a reply is generating, or another exchange came first).
    /// </summary>
    public async Task<PendingExchange?> BeginAsync(AppDbContext db, Exchange exchange, CancellationToken ct)
    {
        var (current, expectedSeq) = (exchange.Conversation, exchange.Conversation.LastEventSeq - 2);
        var tx = await db.Database.BeginTransactionAsync(ct);
        try
        {
            var claimed = await db.Conversations.Where(c => c.Id == current.Id && c.ActiveReplyId == null && c.LastEventSeq == expectedSeq)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.ActiveReplyId, current.ActiveReplyId).SetProperty(c => c.LastEventSeq, current.LastEventSeq)
                    .SetProperty(c => c.MessageCount, current.MessageCount).SetProperty(c => c.UpdatedAt, current.UpdatedAt), ct);
            if (claimed == 0)
            {
                await tx.DisposeAsync();
                return null;
            }
            db.ConversationMessages.AddRange(exchange.Rows);
            db.ConversationEvents.AddRange(exchange.Events);
            await db.SaveChangesAsync(ct);
            return new PendingExchange(db, tx, exchange);
        }
        catch
        {
            await tx.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Appends a reply's events (numbered from <paramref name="expectedLast"/> + 1) and renews its lease. Null when the
    /// reply is no longer this writer's (the sweeper failed it, or the conversation was deleted); else whether a cancel
    /// was asked for.
    /// </summary>
    public async Task<bool?> AppendAsync(Guid conversationId, Guid replyId, long expectedLast, IReadOnlyList<ConversationEvent> events, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.UtcNow();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (events.Count > 0)
        {
            var last = expectedLast + events.Count;
            if (await Advance(db, conversationId, replyId, expectedLast, last, clearReply: false, now, ct) == 0)
            {
                return null;
            }
            db.ConversationEvents.AddRange(events);
            await db.SaveChangesAsync(ct);
        }
        var renewed = await db.ConversationMessages.Where(m => m.Id == replyId && m.Status == MessageStatuses.Generating)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseUntil, now + options.Value.ReplyLease), ct);
        if (renewed == 0)
        {
            return null;
        }
        var cancel = await db.ConversationMessages.Where(m => m.Id == replyId).Select(m => m.CancelRequested).FirstAsync(ct);
        await tx.CommitAsync(ct);
        return cancel;
    }

    /// <summary>Stores the reply as it ended, with its final event (number <paramref name="expectedLast"/> + 1); false when it was no longer this writer's.</summary>
    public async Task<bool> FinishAsync(ConversationMessage reply, long expectedLast, ConversationEvent final, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (await Advance(db, reply.ConversationId, reply.Id, expectedLast, final.Seq, clearReply: true, final.At, ct) == 0
            || await Complete(db, reply, lapsedBefore: null, ct) == 0)
        {
            return false;
        }
        db.ConversationEvents.Add(final);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>
    /// Fails the replies whose generating node stopped renewing their lease (it crashed, or lost the database), keeping
    /// the text it had written to the log. Returns the conversations changed.
    /// </summary>
    public async Task<List<Guid>> SweepAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.UtcNow();
        var lapsed = await db.ConversationMessages.AsNoTracking()
            .Where(m => m.Status == MessageStatuses.Generating && m.LeaseUntil < now).OrderBy(m => m.LeaseUntil).Take(100).ToListAsync(ct);
        var swept = new List<Guid>();
        foreach (var reply in lapsed)
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var last = await db.Conversations.Where(c => c.Id == reply.ConversationId).Select(c => c.LastEventSeq).FirstOrDefaultAsync(ct);
            var deltas = await db.ConversationEvents.AsNoTracking()
                .Where(e => e.ConversationId == reply.ConversationId && e.Seq > reply.StartSeq && e.Type == ConversationEventTypes.ReplyDelta)
                .OrderBy(e => e.Seq).Select(e => e.Data).ToListAsync(ct);
            var text = new StringBuilder();
            foreach (var delta in deltas)
            {
                text.Append(JsonSerializer.Deserialize<ReplyDeltaData>(delta, JsonSerializerOptions.Web)!.Text);
            }
            reply.Content = text.ToString();
            reply.Status = MessageStatuses.Failed;
            reply.FinishReason = FinishReasons.Error;
            reply.Error = "Interrupted: the node generating this reply stopped before it finished.";
            reply.CompletedAt = now;
            if (await Advance(db, reply.ConversationId, reply.Id, last, last + 1, clearReply: true, now, ct) == 0
                || await Complete(db, reply, lapsedBefore: now, ct) == 0)
            {
                continue;
            }
            db.ConversationEvents.Add(ConversationContracts.Event(reply.ConversationId, last + 1, ConversationEventTypes.ReplyFailed, now, reply.Finished()));
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            db.ChangeTracker.Clear();
            swept.Add(reply.ConversationId);
        }
        return swept;
    }

    /// <summary>Asks the reply being generated in the conversation to stop (its node reads this as it writes); false when none is.</summary>
    public static async Task<bool> RequestCancelAsync(AppDbContext db, Guid conversationId, CancellationToken ct) =>
        await db.ConversationMessages
            .Where(m => m.ConversationId == conversationId && m.Status == MessageStatuses.Generating)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.CancelRequested, true), ct) > 0;

    private static Task<int> Advance(
        AppDbContext db, Guid conversationId, Guid replyId, long expectedLast, long last, bool clearReply, DateTime now, CancellationToken ct) =>
        db.Conversations.Where(c => c.Id == conversationId && c.ActiveReplyId == replyId && c.LastEventSeq == expectedLast)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.LastEventSeq, last).SetProperty(c => c.UpdatedAt, now)
                .SetProperty(c => c.ActiveReplyId, c => clearReply ? (Guid?)null : c.ActiveReplyId), ct);

    private static Task<int> Complete(AppDbContext db, ConversationMessage reply, DateTime? lapsedBefore, CancellationToken ct) =>
        db.ConversationMessages
            .Where(m => m.Id == reply.Id && m.Status == MessageStatuses.Generating && (lapsedBefore == null || m.LeaseUntil < lapsedBefore))
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.Content, reply.Content).SetProperty(m => m.Status, reply.Status)
                .SetProperty(m => m.FinishReason, reply.FinishReason).SetProperty(m => m.Error, reply.Error)
                .SetProperty(m => m.InputTokens, reply.InputTokens).SetProperty(m => m.OutputTokens, reply.OutputTokens)
                .SetProperty(m => m.CompletedAt, reply.CompletedAt).SetProperty(m => m.LeaseUntil, (DateTime?)null), ct);
}

public static class FinishReasons
{
    public const string Stop = "stop";
    public const string Cancelled = "cancelled";
    public const string Timeout = "timeout";
    public const string Error = "error";
}
