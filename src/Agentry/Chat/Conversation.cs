using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Chat;

/// <summary>
/// A conversation with one model (chosen directly, or through an <c>llm</c> agent whose model and system prompt it
/// copied when it was created). Deleting one deletes its messages and events with it.
/// </summary>
public sealed class Conversation : ICreatedRow
{
    public const int TitleMaxLength = 200;
    public const int ModelMaxLength = 200;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public string? Title { get; set; }

    /// <summary>The catalog's model id, <c>{provider}/{name}</c>.</summary>
    public required string Model { get; set; }

    public Guid? AgentId { get; init; }
    public string? SystemPrompt { get; set; }

    /// <summary>The ids of the knowledge collections searched for each message, as a JSON array; null for none.</summary>
    public string? KnowledgeCollections { get; set; }

    /// <summary>The number of the last event in its log; events are numbered from 1 with no gaps.</summary>
    public long LastEventSeq { get; set; }

    /// <summary>How many messages it has; a message's <see cref="ConversationMessage.Position"/> is taken from it.</summary>
    public int MessageCount { get; set; }

    /// <summary>The reply being generated, if any: a conversation generates one reply at a time.</summary>
    public Guid? ActiveReplyId { get; set; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public Guid? CreatedBy { get; init; }

    public static IReadOnlyList<Guid> CollectionsOf(string? json) =>
        json is null ? [] : System.Text.Json.JsonSerializer.Deserialize<List<Guid>>(json)!;
}

/// <summary>One message: a user's, or a model's reply (whole, or as far as it got when it was cancelled or failed).</summary>
public sealed class ConversationMessage
{
    public Guid Id { get; init; }
    public Guid ConversationId { get; init; }

    /// <summary>1, 2, 3… in the order the conversation received them.</summary>
    public int Position { get; init; }

    /// <summary>One of <see cref="MessageRoles"/>.</summary>
    public required string Role { get; init; }

    public string Content { get; set; } = "";

    /// <summary>One of <see cref="MessageStatuses"/>.</summary>
    public required string Status { get; set; }

    /// <summary>The model's finish reason (<c>stop</c>, <c>length</c>), or <c>cancelled</c>/<c>error</c>/<c>timeout</c>.</summary>
    public string? FinishReason { get; set; }

    /// <summary>Why a reply was cancelled or failed.</summary>
    public string? Error { get; set; }

    public string? Model { get; init; }
    public int? InputTokens { get; set; }
    public int? OutputTokens { get; set; }

    /// <summary>Replies being generated: until when the generating node holds it (renewed as it writes); a lapsed lease fails the reply.</summary>
    public DateTime? LeaseUntil { get; set; }

    /// <summary>Set by a cancel made on any node; the generating node reads it while it writes.</summary>
    public bool CancelRequested { get; set; }

    /// <summary>Replies: the number of their <c>reply.started</c> event; their deltas follow it in the log.</summary>
    public long StartSeq { get; init; }

    /// <summary>Replies: the knowledge chunks their prompt held (<see cref="Knowledge.Citation"/>s as JSON); null for none.</summary>
    public string? Citations { get; set; }

    public Guid? CreatedBy { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? CompletedAt { get; set; }
}

/// <summary>
/// One thing that happened in a conversation: a message stored, a reply started, a piece of a reply (one per delta the
/// model streamed), a reply finished. Numbered per conversation from <see cref="Conversation.LastEventSeq"/>, which every
/// write advances conditionally, so a reader resuming after N misses nothing and sees nothing twice.
/// </summary>
public sealed class ConversationEvent
{
    public Guid ConversationId { get; init; }
    public long Seq { get; init; }

    /// <summary>One of <see cref="ConversationEventTypes"/>.</summary>
    public required string Type { get; init; }

    public DateTime At { get; init; }

    /// <summary>The event's JSON.</summary>
    public required string Data { get; init; }
}

public static class MessageRoles
{
    public const string User = "user";
    public const string Assistant = "assistant";
}

public static class MessageStatuses
{
    public const string Complete = "complete";
    public const string Generating = "generating";
    public const string Cancelled = "cancelled";
    public const string Failed = "failed";
}

public static class ConversationEventTypes
{
    public const string Message = "message";
    public const string ReplyStarted = "reply.started";
    public const string ReplyDelta = "reply.delta";
    public const string ReplyCompleted = "reply.completed";
    public const string ReplyCancelled = "reply.cancelled";
    public const string ReplyFailed = "reply.failed";

    public static string ForStatus(string status) => status switch
    {
        MessageStatuses.Complete => ReplyCompleted,
        MessageStatuses.Cancelled => ReplyCancelled,
        _ => ReplyFailed,
    };
}

internal sealed class ConversationConfiguration : IEntityTypeConfiguration<Conversation>
{
    public void Configure(EntityTypeBuilder<Conversation> e)
    {
        e.ToTable("conversations");
        e.HasKey(x => x.Id);
        e.Property(x => x.Id).ValueGeneratedNever();
        e.Property(x => x.Title).HasMaxLength(Conversation.TitleMaxLength);
        e.Property(x => x.Model).HasMaxLength(Conversation.ModelMaxLength);
        e.HasOne<Workspace>().WithMany().HasForeignKey(x => x.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        // The workspace's list, newest first (ids are UUIDv7).
        e.HasIndex(x => new { x.WorkspaceId, x.Id });
    }
}

internal sealed class ConversationMessageConfiguration : IEntityTypeConfiguration<ConversationMessage>
{
    public void Configure(EntityTypeBuilder<ConversationMessage> e)
    {
        e.ToTable("conversation_messages");
        e.HasKey(x => x.Id);
        e.Property(x => x.Id).ValueGeneratedNever();
        e.Property(x => x.Role).HasMaxLength(16);
        e.Property(x => x.Status).HasMaxLength(16);
        e.Property(x => x.FinishReason).HasMaxLength(32);
        e.Property(x => x.Model).HasMaxLength(Conversation.ModelMaxLength);
        e.HasOne<Conversation>().WithMany().HasForeignKey(x => x.ConversationId).OnDelete(DeleteBehavior.Cascade);
        e.HasIndex(x => new { x.ConversationId, x.Position }).IsUnique();
        // The sweeper's search for replies whose generating node went away.
        e.HasIndex(x => new { x.Status, x.LeaseUntil });
    }
}

internal sealed class ConversationEventConfiguration : IEntityTypeConfiguration<ConversationEvent>
{
    public void Configure(EntityTypeBuilder<ConversationEvent> e)
    {
        e.ToTable("conversation_events");
        e.HasKey(x => new { x.ConversationId, x.Seq });
        e.Property(x => x.Type).HasMaxLength(32);
        e.HasOne<Conversation>().WithMany().HasForeignKey(x => x.ConversationId).OnDelete(DeleteBehavior.Cascade);
    }
}
