using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Chat;

public static class ConversationEndpoints
{
    /// <summary><c>/api/v1/conversations</c>: scope <c>chat</c>; viewers read, members write.</summary>
    public static IEndpointRouteBuilder MapConversations(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/conversations", "Conversations");

        group.MapPost("/", CreateAsync).WithName("CreateConversation").WithSummary("Start a conversation with a model or an llm agent")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/", ListAsync).WithName("ListConversations").WithSummary("List the workspace's conversations, newest first, a page at a time")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetConversation").WithSummary("Get a conversation with its messages, oldest first")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateConversation").WithSummary("Rename a conversation (an empty title clears it)")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems();
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteConversation")
            .WithSummary("Delete a conversation with its messages and events, for good; a reply being generated is stopped")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member);
        group.MapPost("/{id:guid}/messages", PostMessageAsync).WithName("PostConversationMessage")
            .WithSummary("Send a message; the reply comes whole as JSON, or as Server-Sent Events (Accept: text/event-stream), and is stored either way")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member)
            .Produces<ConversationEventResponse>(StatusCodes.Status200OK, "text/event-stream")
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status502BadGateway).ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);
        group.MapPost("/{id:guid}/cancel", CancelAsync).WithName("CancelConversationReply")
            .WithSummary("Stop the reply being generated; what it wrote so far is stored, marked cancelled")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/{id:guid}/events", EventsAsync).WithName("ListConversationEvents")
            .WithSummary("A conversation's events in order: JSON, or a live Server-Sent Events stream (Accept: text/event-stream) that resumes after Last-Event-ID")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Viewer)
            .Produces<ConversationEventResponse>(StatusCodes.Status200OK, "text/event-stream");
        return endpoints;
    }

    internal static async Task<Results<Created<ConversationResponse>, ProblemHttpResult>> CreateAsync(
        CreateConversationRequest request, CurrentWorkspace workspace, Caller caller, ConversationExchanges exchanges, CancellationToken ct)
    {
        var (conversation, problem) = await exchanges.CreateAsync(workspace.Id, caller.Actor, request, "model", ct);
        return problem ?? (Results<Created<ConversationResponse>, ProblemHttpResult>)TypedResults.Created(
            $"/api/v1/conversations/{conversation!.Id}", conversation.ToResponse());
    }

    internal static async Task<Results<Ok<Page<ConversationResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Paging.CreationSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var query = db.Conversations.AsNoTracking().Where(c => c.WorkspaceId == workspace.Id);
        return TypedResults.Ok(await query.CreationPageAsync(sort, after, page.Size, c => c.ToResponse(), ct));
    }

    internal static async Task<Results<Ok<ConversationDetailResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var conversation = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.WorkspaceId == workspace.Id, ct);
        if (conversation is null)
        {
            return NotFound(id);
        }
        var messages = await db.ConversationMessages.AsNoTracking().Where(m => m.ConversationId == id).OrderBy(m => m.Position).ToListAsync(ct);
        return TypedResults.Ok(conversation.ToDetail(messages));
    }

    internal static async Task<Results<Ok<ConversationResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateConversationRequest request, CurrentWorkspace workspace, AppDbContext db, TimeProvider clock, CancellationToken ct)
    {
        var title = string.IsNullOrWhiteSpace(request.Title) ? null : request.Title.Trim();
        // Only the title and its time: a reply being written updates the conversation's other columns meanwhile.
        await db.Conversations.Where(c => c.Id == id && c.WorkspaceId == workspace.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.Title, title).SetProperty(c => c.UpdatedAt, clock.UtcNow()), ct);
        var conversation = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.WorkspaceId == workspace.Id, ct);
        return conversation is null ? NotFound(id) : TypedResults.Ok(conversation.ToResponse());
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, ConversationReplies replies, CancellationToken ct)
    {
        if (!await db.Conversations.AnyAsync(c => c.Id == id && c.WorkspaceId == workspace.Id, ct))
        {
            return NotFound(id);
        }
        // A reply generating here stops at once; one generating on another node stops at its next write, which finds no conversation.
        replies.Cancel(id);
        await db.Conversations.Where(c => c.Id == id && c.WorkspaceId == workspace.Id).ExecuteDeleteAsync(ct);
        return TypedResults.NoContent();
    }

    internal static Task<Results<Ok<ExchangeResponse>, ServerSentEventsResult<ConversationEventResponse>, ProblemHttpResult>> PostMessageAsync(
        Guid id, PostMessageRequest request, CurrentWorkspace workspace, Caller caller, ConversationExchanges exchanges, HttpContext context,
        CancellationToken ct) =>
        exchanges.SendAsync(workspace.Id, id, request.Content, "content", EventStreams.WantsEventStream(context), caller, context, ct);

    internal static async Task<Results<Accepted<ConversationResponse>, ProblemHttpResult>> CancelAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, ConversationReplies replies, CancellationToken ct)
    {
        var conversation = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id && c.WorkspaceId == workspace.Id, ct);
        if (conversation is null)
        {
            return NotFound(id);
        }
        // Here at once; on another node the generating writer reads the flag within a quarter second.
        var local = replies.Cancel(id);
        if (!await ConversationStore.RequestCancelAsync(db, id, ct) && !local)
        {
            return Problem.Conflict("no_active_reply", $"Conversation {id} is not generating a reply.");
        }
        return TypedResults.Accepted($"/api/v1/conversations/{id}", conversation.ToResponse());
    }

    /// <summary>
    /// The conversation's events after <paramref name="after"/> (or the <c>Last-Event-ID</c> header). As JSON, one page;
    /// as Server-Sent Events, a live stream (each event's id is its sequence number) that ends once no reply is being
    /// generated and every event was sent.
    /// </summary>
    internal static async Task<Results<Ok<ConversationEventPage>, ServerSentEventsResult<ConversationEventResponse>, ProblemHttpResult>> EventsAsync(
        Guid id, [FromQuery] long? after, [FromHeader(Name = EventStreams.LastEventIdHeader)] string? lastEventId, CurrentWorkspace workspace,
        AppDbContext db, EventSignal signal, HttpContext context, CancellationToken ct)
    {
        if (EventStreams.ResolveFrom(after, lastEventId, out var from) is { } invalid)
        {
            return invalid;
        }
        var conversation = await db.Conversations.AsNoTracking().Where(c => c.Id == id && c.WorkspaceId == workspace.Id)
            .Select(c => new { c.ActiveReplyId }).FirstOrDefaultAsync(ct);
        if (conversation is null)
        {
            return NotFound(id);
        }
        if (!EventStreams.WantsEventStream(context))
        {
            var (page, full) = await ReadEventsAsync(db, id, from, ct);
            return TypedResults.Ok(new ConversationEventPage(page, page.Count > 0 ? page[^1].Seq : from, conversation.ActiveReplyId is null && !full));
        }
        return TypedResults.ServerSentEvents(EventStreams.TailAsync(
            id, from, (last, token) => ReadEventsAsync(db, id, last, token),
            async token => await db.Conversations.AsNoTracking().Where(c => c.Id == id).Select(c => new { c.ActiveReplyId }).FirstOrDefaultAsync(token)
                is not { ActiveReplyId: not null },
            e => (e.Type, e.Seq), signal, ct));
    }

    internal static async Task<EventPage<ConversationEventResponse>> ReadEventsAsync(AppDbContext db, Guid id, long after, CancellationToken ct)
    {
        var rows = await db.ConversationEvents.AsNoTracking().Where(e => e.ConversationId == id && e.Seq > after)
            .OrderBy(e => e.Seq).Take(EventStreams.PageSize).ToListAsync(ct);
        return new(rows.Select(e => e.ToResponse()).ToList(), rows.Count == EventStreams.PageSize);
    }

    internal static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Conversation {id} was not found.");
}
