using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Agentry.Knowledge;

namespace Agentry.Chat;

/// <summary>
/// A new conversation: with a <c>model</c> from the catalog, or an <c>llm</c> agent (<c>agentId</c>) whose model, system
/// prompt and knowledge collections it takes. <c>knowledgeCollections</c> (ids or names) are searched for every message.
/// </summary>
public sealed record CreateConversationRequest(
    [property: StringLength(Conversation.TitleMaxLength)] string? Title = null,
    [property: StringLength(Conversation.ModelMaxLength)] string? Model = null,
    Guid? AgentId = null,
    [property: StringLength(ConversationContracts.SystemPromptMaxLength)] string? SystemPrompt = null,
    [property: MaxLength(ConversationContracts.MaxKnowledgeCollections)] IReadOnlyList<string>? KnowledgeCollections = null);

/// <summary>A conversation's new title: required, so a body without it changes nothing by mistake; an empty one clears it.</summary>
public sealed record UpdateConversationRequest([property: Required(AllowEmptyStrings = true), StringLength(Conversation.TitleMaxLength)] string? Title);

/// <summary>A user's message; its length is checked against <c>Agentry:Chat:MaxMessageLength</c>.</summary>
public sealed record PostMessageRequest(string? Content);

/// <summary>The one-shot form: a message to a new conversation (with <c>model</c> or <c>agentId</c>) or to <c>conversationId</c>.</summary>
public sealed record ChatRequest(
    string? Message,
    [property: StringLength(Conversation.ModelMaxLength)] string? Model = null,
    Guid? ConversationId = null,
    Guid? AgentId = null,
    bool? Stream = null);

public sealed record ConversationResponse(
    Guid Id, string? Title, string Model, Guid? AgentId, string? SystemPrompt, int MessageCount, Guid? ActiveReplyId, long LastEventSeq,
    DateTime CreatedAt, DateTime UpdatedAt, IReadOnlyList<Guid> KnowledgeCollections);

/// <summary>A conversation with all its messages, oldest first.</summary>
public sealed record ConversationDetailResponse(
    Guid Id, string? Title, string Model, Guid? AgentId, string? SystemPrompt, int MessageCount, Guid? ActiveReplyId, long LastEventSeq,
    DateTime CreatedAt, DateTime UpdatedAt, IReadOnlyList<Guid> KnowledgeCollections, IReadOnlyList<MessageResponse> Messages);

/// <summary>A message; a reply lists the knowledge chunks its prompt held (<c>cited</c>: the reply refers to it as <c>[n]</c>).</summary>
public sealed record MessageResponse(
    Guid Id, int Position, string Role, string Content, string Status, string? FinishReason, string? Error, string? Model,
    int? InputTokens, int? OutputTokens, DateTime CreatedAt, DateTime? CompletedAt, IReadOnlyList<CitationResponse> Citations);

/// <summary>The answer to a message: the stored user message and the stored reply (complete, cancelled or failed).</summary>
public sealed record ExchangeResponse(Guid ConversationId, MessageResponse Message, MessageResponse Reply);

public sealed record ConversationEventResponse(long Seq, string Type, DateTime At, JsonElement Data);

/// <summary>A page of a conversation's events; <see cref="Final"/> says nothing is being generated and every event was read.</summary>
public sealed record ConversationEventPage(IReadOnlyList<ConversationEventResponse> Items, long Last, bool Final);

/// <summary>The data of <c>message</c> events.</summary>
public sealed record MessageEventData(Guid MessageId, string Role, string Content);

/// <summary>The data of <c>reply.started</c> events.</summary>
public sealed record ReplyStartedData(Guid MessageId, string Model);

/// <summary>The data of <c>reply.delta</c> events: the next piece of the reply's text.</summary>
public sealed record ReplyDeltaData(Guid MessageId, string Text);

/// <summary>The data of <c>reply.completed</c>, <c>reply.cancelled</c> and <c>reply.failed</c> events.</summary>
public sealed record ReplyFinishedData(Guid MessageId, string Status, string? FinishReason, string? Error, int? InputTokens, int? OutputTokens);

internal static class ConversationContracts
{
    public const int SystemPromptMaxLength = 32_000;
    public const int MaxKnowledgeCollections = 20;

    public static ConversationResponse ToResponse(this Conversation c) =>
        new(c.Id, c.Title, c.Model, c.AgentId, c.SystemPrompt, c.MessageCount, c.ActiveReplyId, c.LastEventSeq, c.CreatedAt, c.UpdatedAt,
            Conversation.CollectionsOf(c.KnowledgeCollections));

    public static ConversationDetailResponse ToDetail(this Conversation c, IEnumerable<ConversationMessage> messages) =>
        new(c.Id, c.Title, c.Model, c.AgentId, c.SystemPrompt, c.MessageCount, c.ActiveReplyId, c.LastEventSeq, c.CreatedAt, c.UpdatedAt,
            Conversation.CollectionsOf(c.KnowledgeCollections), messages.Select(m => m.ToResponse()).ToList());

    public static MessageResponse ToResponse(this ConversationMessage m) =>
        new(m.Id, m.Position, m.Role, m.Content, m.Status, m.FinishReason, m.Error, m.Model, m.InputTokens, m.OutputTokens, m.CreatedAt, m.CompletedAt,
            CitationResponse.Of(Citation.Parse(m.Citations), m.Content));

    public static ConversationEventResponse ToResponse(this ConversationEvent e) =>
        new(e.Seq, e.Type, e.At, JsonSerializer.Deserialize<JsonElement>(e.Data));

    public static ConversationEvent Event<T>(Guid conversationId, long seq, string type, DateTime at, T data) =>
        new() { ConversationId = conversationId, Seq = seq, Type = type, At = at, Data = JsonSerializer.Serialize(data, JsonSerializerOptions.Web) };

    public static ReplyFinishedData Finished(this ConversationMessage reply) =>
        new(reply.Id, reply.Status, reply.FinishReason, reply.Error, reply.InputTokens, reply.OutputTokens);
}
