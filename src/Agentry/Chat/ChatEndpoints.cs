using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Agentry.Chat;

public static class ChatEndpoints
{
    /// <summary>Conversations, and <c>POST /api/v1/chat</c>, the one-shot form built on them (scope <c>chat</c>, members).</summary>
    public static IEndpointRouteBuilder MapChat(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapConversations();
        endpoints.MapWorkspaceResource("/api/v1/chat", "Chat")
            .MapPost("/", ChatAsync).WithName("Chat")
            .WithSummary("Send one message: to conversationId, or to a new conversation with model or agentId; the reply whole, or streamed with stream: true")
            .RequireScope(ApiKeyScopes.Chat).RequireCurrentWorkspaceRole(Roles.Member)
            .Produces<ConversationEventResponse>(StatusCodes.Status200OK, "text/event-stream")
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status502BadGateway).ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);
        return endpoints;
    }

    internal static async Task<Results<Ok<ExchangeResponse>, ServerSentEventsResult<ConversationEventResponse>, ProblemHttpResult>> ChatAsync(
        ChatRequest request, CurrentWorkspace workspace, Caller caller, ConversationExchanges exchanges, HttpContext context, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Message))
        {
            return Problem.Validation("message", "The message must not be empty.");
        }
        var conversationId = request.ConversationId;
        if (conversationId is null)
        {
            var (conversation, problem) = await exchanges.CreateAsync(
                workspace.Id, caller.Actor, new CreateConversationRequest(Model: request.Model, AgentId: request.AgentId), "model", ct);
            if (problem is not null)
            {
                return problem;
            }
            conversationId = conversation!.Id;
        }
        var stream = request.Stream ?? EventStreams.WantsEventStream(context);
        if (stream)
        {
            EventStreams.MarkUnbuffered(context);
        }
        return await exchanges.SendAsync(workspace.Id, conversationId.Value, request.Message, "message", stream, caller, context, ct);
    }
}
