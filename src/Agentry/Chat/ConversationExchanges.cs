using System.Net.ServerSentEvents;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Models;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Chat;

/// <summary>
/// Starting conversations and exchanges, shared by <c>/api/v1/conversations</c> and the one-shot <c>/api/v1/chat</c>:
/// checks the model and the message, finds what the conversation's knowledge collections hold on it, stores the message
/// and a generating reply (with the chunks its prompt gets, as citations), starts the reply and answers whole or as a stream.
/// </summary>
internal sealed class ConversationExchanges(
    AppDbContext db, ModelCatalog catalog, ConversationHistory history, ConversationStore store, ConversationReplies replies,
    KnowledgeRetrieval retrieval, IOptions<ConversationOptions> options, TimeProvider clock)
{
    /// <summary>Seconds a client is told to wait when the model server is down.</summary>
    private const string RetryAfterSeconds = "5";

    /// <summary>A new conversation with a model, or with an <c>llm</c> agent's model and system prompt; or the problem that refuses it.</summary>
    public async Task<(Conversation? Conversation, ProblemHttpResult? Problem)> CreateAsync(
        Guid workspaceId, Guid? actor, CreateConversationRequest request, string modelField, CancellationToken ct)
    {
        var (model, systemPrompt, collections) = (request.Model, request.SystemPrompt, request.KnowledgeCollections);
        var strict = collections is not null;
        if (request.AgentId is { } agentId)
        {
            var agent = await db.Agents.AsNoTracking().FirstOrDefaultAsync(a => a.Id == agentId && a.WorkspaceId == workspaceId && a.DeletedAt == null, ct);
            if (agent is null)
            {
                return (null, Problem.Unprocessable("unknown_agent", $"Agent {agentId} was not found in this workspace."));
            }
            if (agent.Kind != AgentKinds.Llm)
            {
                return (null, Problem.Unprocessable("agent_not_llm", $"Agent {agentId} is a {agent.Kind} agent; only llm agents can chat."));
            }
            var definition = AgentDefinition.Parse(agent.Definition);
            (model, systemPrompt, collections) = (model ?? definition.Model, systemPrompt ?? definition.SystemPrompt, collections ?? definition.KnowledgeCollections);
        }
        var (knowledge, unknown) = await CollectionsAsync(workspaceId, collections ?? [], ct);
        if (strict && unknown is not null)
        {
            return (null, Problem.Unprocessable("unknown_collection", $"The workspace has no knowledge collection '{unknown}' (GET /api/v1/collections lists them by id and name)."));
        }
        if (string.IsNullOrWhiteSpace(model))
        {
            return (null, Problem.Validation(modelField, "Name a model (an id from GET /api/v1/models) or an llm agent (agentId)."));
        }
        if (await catalog.FindAsync(model, ct) is null)
        {
            return (null, UnknownModel(model));
        }
        var now = clock.UtcNow();
        var conversation = new Conversation
        {
            Id = Ids.New(), WorkspaceId = workspaceId, Title = request.Title, Model = model, AgentId = request.AgentId,
            SystemPrompt = systemPrompt, CreatedAt = now, UpdatedAt = now, CreatedBy = actor,
            KnowledgeCollections = knowledge.Count == 0 ? null : System.Text.Json.JsonSerializer.Serialize(knowledge),
        };
        db.Conversations.Add(conversation);
        await db.SaveChangesAsync(ct);
        return (conversation, null);
    }

    /// <summary>The ids of the named collections (ids or names) in the workspace, and the first name that is none of them.</summary>
    private async Task<(List<Guid> Ids, string? Unknown)> CollectionsAsync(Guid workspaceId, IReadOnlyList<string> named, CancellationToken ct)
    {
        var found = named.Count == 0 ? [] : await KnowledgeRetrieval.FindAsync(db, workspaceId, named, ct);
        return ([.. found.Select(c => c.Id)], named.FirstOrDefault(n => !found.Any(c => KnowledgeRetrieval.Names(n, c))));
    }

    /// <summary>
    /// Stores <paramref name="content"/> as the user's message and starts the reply; answers with the whole exchange
    /// once the reply is stored, or at once with its events as a stream (<paramref name="stream"/>). The reply goes on
    /// generating if the client goes away.
    /// </summary>
    public async Task<Results<Ok<ExchangeResponse>, ServerSentEventsResult<ConversationEventResponse>, ProblemHttpResult>> SendAsync(
        Guid workspaceId, Guid conversationId, string? content, string field, bool stream, Caller caller, HttpContext http, CancellationToken ct)
    {
        var (run, problem) = await StartAsync(workspaceId, conversationId, content, field, caller, ct);
        if (run is null)
        {
            return problem!;
        }
        if (stream)
        {
            // Headers wait for the first token, so a model server that cannot be reached is still a 503.
            await run.FirstOutput.Task.WaitAsync(ct);
            if (run.Refusal is { } refused)
            {
                // Answered by the exception handler, like the refusal the resolve above would have made.
                throw refused;
            }
            return run.Unavailable
                ? Unavailable(http, run)
                : TypedResults.ServerSentEvents(Items(run, ct));
        }
        var reply = await run.Completion.Task.WaitAsync(ct);
        return reply switch
        {
            _ when run.Refusal is { } refused => throw refused,
            _ when run.Unavailable => Unavailable(http, run),
            { Status: MessageStatuses.Failed, FinishReason: FinishReasons.Timeout } => Problem.GatewayTimeout("generation_timeout", reply.Error!),
            { Status: MessageStatuses.Failed } => Problem.BadGateway("model_failed", reply.Error ?? "The reply failed."),
            _ => TypedResults.Ok(new ExchangeResponse(conversationId, run.Exchange.Message.ToResponse(), reply.ToResponse())),
        };
    }

    /// <summary>
    /// Checks <paramref name="content"/>, stores it as the user's message and starts the reply in the background (HTTP
    /// and WebSocket senders alike); or the problem that refuses it.
    /// </summary>
    public async Task<(ReplyRun? Run, ProblemHttpResult? Problem)> StartAsync(
        Guid workspaceId, Guid conversationId, string? content, string field, Caller caller, CancellationToken ct, bool retry = true)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            return (null, Problem.Validation(field, "The message must not be empty."));
        }
        if (content.Length > options.Value.MaxMessageLength)
        {
            return (null, Problem.Validation(field, $"The message is {content.Length} characters; at most {options.Value.MaxMessageLength} are accepted."));
        }
        var conversation = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == conversationId && c.WorkspaceId == workspaceId, ct);
        if (conversation is null)
        {
            return (null, ConversationEndpoints.NotFound(conversationId));
        }
        if (await catalog.ResolveAsync(conversation.Model, ModelCaller.Of(caller, workspaceId, conversation.AgentId), ct) is not { } model)
        {
            return (null, UnknownModel(conversation.Model));
        }
        var counter = await history.CounterAsync(model.Model, ct);
        var needed = ConversationHistory.Cost(counter, content) + (conversation.SystemPrompt is { } prompt ? ConversationHistory.Cost(counter, prompt) : 0);
        if (needed > history.Budget(model.Model))
        {
            return (null, Problem.Validation(field,
                $"The message and system prompt are about {needed} tokens; model {model.Model.Id} takes at most {history.Budget(model.Model)} with room for its reply."));
        }
        if (conversation.ActiveReplyId is not null)
        {
            return (null, ReplyInProgress(conversationId));
        }
        // Optimistically, the conversation is still as read: the model starts on the prompt at once, while the exchange is
        // written and committed (an fsync on most disks); nothing of the reply is shown or written before the commit.
        var retrieved = conversation.KnowledgeCollections is null ? Retrieved.None
            : (await retrieval.RetrieveAsync(workspaceId, [.. Conversation.CollectionsOf(conversation.KnowledgeCollections).Select(id => id.ToString())], content, ct))
                .Within((history.Budget(model.Model) - needed) / 2, text => ConversationHistory.Cost(counter, text));
        var exchange = store.Prepare(conversation, content, model.Model.Id, caller.Actor, Citation.ToJson(retrieved.Citations));
        var messages = await history.BuildAsync(db, conversation, exchange.Message.Position, content, model.Model, counter, ct, retrieved.Context);
        var committed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = replies.Start(exchange, model, messages, committed.Task);
        try
        {
            await using var pending = await store.BeginAsync(db, exchange, ct);
            if (pending is not null)
            {
                await pending.CommitAsync(ct);
                replies.Register(run);
                committed.SetResult();
                return (run, null);
            }
            committed.SetException(new InvalidOperationException("The conversation changed before the exchange was stored."));
        }
        catch (Exception ex)
        {
            committed.TrySetException(ex);
            replies.Cancel(run);
            throw;
        }
        replies.Cancel(run);
        // Another exchange came first: if it is still generating, that is the caller's conflict; if it already ended, the
        // message goes after it (read afresh).
        var now = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == conversationId && c.WorkspaceId == workspaceId, ct);
        return now switch
        {
            null => (null, ConversationEndpoints.NotFound(conversationId)),
            { ActiveReplyId: not null } => (null, ReplyInProgress(conversationId)),
            _ when retry => await StartAsync(workspaceId, conversationId, content, field, caller, ct, retry: false),
            _ => (null, Problem.Conflict("conversation_busy", $"Conversation {conversationId} is changing too fast to add a message; try again.")),
        };
    }

    private static async IAsyncEnumerable<SseItem<ConversationEventResponse>> Items(
        ReplyRun run, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var e in run.Feed.ReadAsync(ct))
        {
            yield return EventStreams.ToSseItem(e, e.Type, e.Seq);
        }
    }

    private static ProblemHttpResult Unavailable(HttpContext http, ReplyRun run)
    {
        http.Response.Headers.RetryAfter = RetryAfterSeconds;
        return Problem.Unavailable(run.Completion.Task.Result.Error ?? "The model server is unavailable.");
    }

    private static ProblemHttpResult ReplyInProgress(Guid conversationId) =>
        Problem.Conflict("reply_in_progress", $"Conversation {conversationId} is generating a reply; wait for it or cancel it.");

    private static ProblemHttpResult UnknownModel(string model) =>
        Problem.Unprocessable("unknown_model", $"No configured provider offers model '{model}'; GET /api/v1/models lists those that do.");
}
