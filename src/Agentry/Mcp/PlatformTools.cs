using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Models;
using Agentry.Tasks;
using Agentry.Usage;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using ModelContextProtocol.Protocol;
using ZiggyCreatures.Caching.Fusion;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;
using Microsoft.Extensions.Options;

namespace Agentry.Mcp;

/// <summary>One request to <c>/mcp</c>: who calls, in which workspace (resolved by the endpoint's access rule).</summary>
internal sealed record McpCall(HttpContext Http, Caller Caller, CurrentWorkspace Workspace)
{
    public Guid WorkspaceId => Workspace.Id;

    public JsonSerializerOptions Json => Http.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
}

/// <summary>
/// A tool of Agentry's own. <see cref="Scope"/> and <see cref="Role"/> are those of the REST endpoint it stands for, so
/// a caller may do through <c>/mcp</c> exactly what it may do through <c>/api/v1</c>.
/// </summary>
internal sealed record PlatformTool(
    string Name, string Description, string Scope, string Role, JsonElement InputSchema, Func<McpCall, JsonElement, CancellationToken, Task<CallToolResult>> RunAsync)
{
    public Tool ToProtocol() => new() { Name = Name, Description = Description, InputSchema = InputSchema };
}

/// <summary>
/// list_agents, create_task, get_task, chat_with_agent and search_knowledge: each runs the code its REST endpoint runs
/// (the same submission path with its validation and idempotency, the same queries scoped to the workspace, the same
/// chat path, the same search).
/// </summary>
internal static class PlatformTools
{
    public static readonly IReadOnlyList<PlatformTool> All =
    [
        new("list_agents", "List the workspace's agents (id, name, kind, model, allowed tools, limits), a page at a time.",
            ApiKeyScopes.AgentsRead, Roles.Viewer, Schema($$$"""
            {"type":"object","properties":{
              "kind":{"type":"string","enum":["{{{string.Join("\",\"", AgentKinds.All)}}}"],"description":"Only agents of this kind."},
              "limit":{"type":"integer","minimum":1,"maximum":{{{PageRequest.MaxLimit}}},"description":"Page size (default {{{PageRequest.DefaultLimit}}})."},
              "cursor":{"type":"string","description":"nextCursor of the previous page."}},
             "additionalProperties":false}
            """), ListAgentsAsync),
        new("create_task", "Submit a task to an agent; it runs in the background. Returns the queued task; read its outcome with get_task.",
            ApiKeyScopes.TasksWrite, Roles.Member, Schema($$$"""
            {"type":"object","properties":{
              "agentId":{"type":"string","format":"uuid","description":"The agent that runs the task (list_agents)."},
              "input":{"description":"Any JSON value, handed to the agent as is; for an llm agent a string or {\"message\": \"…\"}."},
              "priority":{"type":"integer","minimum":0,"maximum":9,"description":"Higher runs first; default {{{TaskContracts.DefaultPriority}}}."},
              "runAt":{"type":"string","format":"date-time","description":"Not before this time (UTC); default now."},
              "maxAttempts":{"type":"integer","minimum":1,"maximum":100},
              "timeoutSeconds":{"type":"integer","minimum":1,"maximum":86400,"description":"Per attempt; default the agent's time limit."},
              "idempotencyKey":{"type":"string","minLength":1,"maxLength":{{{AgentTask.IdempotencyKeyMaxLength}}},"description":"The same key and arguments return the original task instead of a new one."}},
             "required":["agentId"],"additionalProperties":false}
            """), CreateTaskAsync),
        new("get_task", "Get a task: its status (queued, running, succeeded, dead, cancelled), result, reason and attempts.",
            ApiKeyScopes.TasksRead, Roles.Viewer, Schema("""
            {"type":"object","properties":{"id":{"type":"string","format":"uuid","description":"The task's id (create_task)."}},
             "required":["id"],"additionalProperties":false}
            """), GetTaskAsync),
        new("chat_with_agent", "Send one message to an llm agent (its model and system prompt) and get its reply text; each call is a new conversation.",
            ApiKeyScopes.Chat, Roles.Member, Schema("""
            {"type":"object","properties":{
              "agentId":{"type":"string","format":"uuid","description":"An llm agent (list_agents)."},
              "message":{"type":"string","minLength":1,"description":"The user message."}},
             "required":["agentId","message"],"additionalProperties":false}
            """), ChatWithAgentAsync),
        new("search_knowledge", "Search a knowledge collection by meaning (vector), words (keyword) or both (hybrid, the default); returns the best chunks with their document, position and score.",
            ApiKeyScopes.KnowledgeRead, Roles.Viewer, Schema($$$"""
            {"type":"object","properties":{
              "collectionId":{"type":"string","format":"uuid","description":"The collection to search (GET /api/v1/collections)."},
              "query":{"type":"string","minLength":1,"maxLength":4000,"description":"What to look for."},
              "topK":{"type":"integer","minimum":1,"description":"How many chunks (default {{{SearchEndpoints.DefaultTopK}}})."},
              "mode":{"type":"string","enum":["{{{SearchModes.Vector}}}","{{{SearchModes.Keyword}}}","{{{SearchModes.Hybrid}}}"],"description":"Default hybrid."},
              "documentIds":{"type":"array","items":{"type":"string","format":"uuid"},"maxItems":100,"description":"Only chunks of these documents."}},
             "required":["collectionId","query"],"additionalProperties":false}
            """), SearchKnowledgeAsync),
    ];

    public static PlatformTool? Find(string name) => All.FirstOrDefault(t => t.Name == name);

    private sealed record ListAgentsArguments(string? Kind, int? Limit, string? Cursor);

    private sealed record GetTaskArguments([property: Required] Guid? Id);

    private sealed record ChatArguments([property: Required] Guid? AgentId, [property: Required] string? Message);

    private sealed record SearchKnowledgeArguments(
        [property: Required] Guid? CollectionId, [property: Required, StringLength(4_000, MinimumLength = 1)] string? Query, int? TopK,
        [property: AllowedValues(null, SearchModes.Vector, SearchModes.Keyword, SearchModes.Hybrid, ErrorMessage = "The mode must be one of: vector, keyword, hybrid.")] string? Mode,
        [property: MaxLength(100)] IReadOnlyList<Guid>? DocumentIds);

    private static async Task<CallToolResult> ListAgentsAsync(McpCall call, JsonElement arguments, CancellationToken ct)
    {
        if (!TryRead<ListAgentsArguments>(arguments, out var args, out var invalid))
        {
            return invalid;
        }
        var services = call.Http.RequestServices;
        var page = await AgentEndpoints.ListAsync(
            new PageRequest { Limit = args.Limit, Cursor = args.Cursor }, args.Kind, call.Workspace, call.Http,
            services.GetRequiredService<IFusionCache>(), services.GetRequiredService<IOptions<JsonOptions>>(), ct);
        return page.Result switch
        {
            CachedJson<Page<AgentResponse>> listed => Parsed(listed.Utf8),
            ProblemHttpResult problem => McpToolResults.Error(problem),
            var other => throw new InvalidOperationException($"Unexpected result {other.GetType().Name}."),
        };
    }

    private static async Task<CallToolResult> CreateTaskAsync(McpCall call, JsonElement arguments, CancellationToken ct)
    {
        if (!TryRead<SubmitTaskRequest>(arguments, out var request, out var invalid))
        {
            return invalid;
        }
        // The key is the Idempotency-Key header's: a REST submission and this one with the same key and body are the same request.
        var submission = call.Http.RequestServices.GetRequiredService<TaskSubmission>();
        var outcome = await submission.SubmitAsync(
            call.WorkspaceId, [new TaskSubmission.Item(request with { IdempotencyKey = null }, request.IdempotencyKey)], call.Caller.Actor, ct);
        return outcome.Problem is { } problem ? McpToolResults.Error(problem) : McpToolResults.Json(outcome.Tasks[0].Task.ToResponse(), call.Json);
    }

    private static async Task<CallToolResult> GetTaskAsync(McpCall call, JsonElement arguments, CancellationToken ct)
    {
        if (!TryRead<GetTaskArguments>(arguments, out var args, out var invalid))
        {
            return invalid;
        }
        var found = await TaskEndpoints.GetAsync(args.Id!.Value, call.Workspace, call.Http.RequestServices.GetRequiredService<AppDbContext>(), ct);
        return found.Result switch
        {
            Ok<TaskResponse> { Value: { } task } => McpToolResults.Json(task, call.Json),
            ProblemHttpResult problem => McpToolResults.Error(problem),
            var other => throw new InvalidOperationException($"Unexpected result {other.GetType().Name}."),
        };
    }

    private static async Task<CallToolResult> ChatWithAgentAsync(McpCall call, JsonElement arguments, CancellationToken ct)
    {
        if (!TryRead<ChatArguments>(arguments, out var args, out var invalid))
        {
            return invalid;
        }
        try
        {
            // Never streamed: the tool result is the whole reply (the MCP client's Accept header would otherwise choose SSE).
            var exchange = await ChatEndpoints.ChatAsync(
                new ChatRequest(args.Message, AgentId: args.AgentId, Stream: false), call.Workspace, call.Caller,
                call.Http.RequestServices.GetRequiredService<ConversationExchanges>(), call.Http, ct);
            return exchange.Result switch
            {
                Ok<ExchangeResponse> { Value: { } answered } => new CallToolResult
                {
                    Content = [new TextContentBlock { Text = answered.Reply.Content }],
                    StructuredContent = JsonSerializer.SerializeToElement(answered, call.Json),
                    IsError = answered.Reply.Status == MessageStatuses.Failed,
                },
                ProblemHttpResult problem => McpToolResults.Error(problem),
                var other => throw new InvalidOperationException($"Unexpected result {other.GetType().Name}."),
            };
        }
        catch (TokenBudgetExhaustedException ex)
        {
            return McpToolResults.Error(ex.Message);
        }
    }

    private static async Task<CallToolResult> SearchKnowledgeAsync(McpCall call, JsonElement arguments, CancellationToken ct)
    {
        if (!TryRead<SearchKnowledgeArguments>(arguments, out var args, out var invalid))
        {
            return invalid;
        }
        var services = call.Http.RequestServices;
        var request = new SearchRequest
        {
            Query = args.Query!, TopK = args.TopK, Mode = args.Mode,
            Filter = args.DocumentIds is { Count: > 0 } ids ? new SearchFilter { DocumentIds = ids } : null,
        };
        var found = await SearchEndpoints.SearchAsync(
            args.CollectionId!.Value, request, call.Workspace, services.GetRequiredService<AppDbContext>(),
            services.GetRequiredService<KnowledgeSearch>(), services.GetRequiredService<EmbeddingModels>(),
            services.GetRequiredService<IOptions<KnowledgeOptions>>(), ct);
        return found.Result switch
        {
            Ok<SearchResponse> { Value: { } hits } => McpToolResults.Json(hits, call.Json),
            ProblemHttpResult problem => McpToolResults.Error(problem),
            var other => throw new InvalidOperationException($"Unexpected result {other.GetType().Name}."),
        };
    }

    /// <summary>
    /// The arguments as <typeparamref name="T"/>, checked with its validation attributes (the rules the REST endpoint
    /// applies to the same body); false with the tool error that names what is wrong.
    /// </summary>
    private static bool TryRead<T>(JsonElement arguments, out T value, out CallToolResult invalid) where T : class
    {
        value = null!;
        invalid = null!;
        try
        {
            value = arguments.Deserialize<T>(JsonSerializerOptions.Web)!;
        }
        catch (JsonException ex)
        {
            invalid = McpToolResults.Error($"Invalid arguments: {(ex.Path is { Length: > 1 } path ? path.TrimStart('$', '.') + ": " : "")}" +
                "the value has the wrong type or format.");
            return false;
        }
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
        {
            invalid = McpToolResults.InvalidArguments(results.Select(r => KeyValuePair.Create(
                string.Join(",", r.MemberNames.Select(JsonNamingPolicy.CamelCase.ConvertName)), new[] { r.ErrorMessage ?? "is invalid." })));
            return false;
        }
        return true;
    }

    private static CallToolResult Parsed(ReadOnlyMemory<byte> utf8)
    {
        using var document = JsonDocument.Parse(utf8);
        var element = document.RootElement.Clone();
        return new CallToolResult { Content = [new TextContentBlock { Text = element.GetRawText() }], StructuredContent = element };
    }

    private static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
