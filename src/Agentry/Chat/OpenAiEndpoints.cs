using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace Agentry.Chat;

/// <summary>
/// The OpenAI-compatible API at <c>/v1</c>, so tools that speak OpenAI's API (Open WebUI, LangChain, editors) use
/// Agentry as their model gateway: the same models, keys, scopes and rate limits as <c>/api/v1</c>.
/// </summary>
public static class OpenAiEndpoints
{
    private const string Prefix = "/v1";

    internal static bool IsOpenAiPath(PathString path) => path.StartsWithSegments(Prefix);

    /// <summary>Errors under <c>/v1</c> in OpenAI's envelope (see <see cref="OpenAiErrorWriter"/>).</summary>
    public static IHostApplicationBuilder AddOpenAiApi(this IHostApplicationBuilder builder)
    {
        // Ahead of the default problem details writer: the problem details service asks its writers in order.
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IProblemDetailsWriter, OpenAiErrorWriter>());
        return builder;
    }

    /// <summary><c>GET /v1/models</c>, <c>POST /v1/chat/completions</c> and <c>POST /v1/embeddings</c>: signed-in users, keys and service accounts with scope <c>chat</c>.</summary>
    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup(Prefix).WithTags("OpenAI-compatible").RequireScope(ApiKeyScopes.Chat)
            .ProducesErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden, StatusCodes.Status429TooManyRequests,
                StatusCodes.Status500InternalServerError);
        group.MapGet("/models", ListModelsAsync).WithName("OpenAiListModels")
            .WithSummary("List the models, in OpenAI's format (a provider that is down lists none)");
        group.MapPost("/chat/completions", CompleteAsync).WithName("OpenAiCreateChatCompletion")
            .WithSummary("Answer a conversation, whole (JSON) or streamed (Server-Sent Events, then data: [DONE]), in OpenAI's format")
            .RequireCurrentWorkspaceRole(Roles.Member)
            .Produces<OpenAiChunk>(StatusCodes.Status200OK, "text/event-stream")
            .ProducesErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable,
                StatusCodes.Status504GatewayTimeout);
        group.MapPost("/embeddings", OpenAiEmbeddings.CreateAsync).WithName("OpenAiCreateEmbedding")
            .WithSummary("Embed one text or a batch of texts with the configured embedding model, in OpenAI's format")
            .RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests,
                StatusCodes.Status503ServiceUnavailable, StatusCodes.Status504GatewayTimeout);
        return endpoints;
    }

    /// <summary>Documents <paramref name="statuses"/> as answered with OpenAI's error envelope.</summary>
    private static TBuilder ProducesErrors<TBuilder>(this TBuilder builder, params int[] statuses) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata([.. statuses.Select(status => new ProducesResponseTypeMetadata(status, typeof(OpenAiErrorResponse), ["application/json"]))]);

    internal static async Task<Ok<OpenAiModelList>> ListModelsAsync(ModelCatalog catalog, EmbeddingModels embeddings, CancellationToken ct)
    {
        var listings = await catalog.ListAsync(ct);
        var models = ModelEndpoints.WithEmbeddingModel(listings.SelectMany(l => l.Models), embeddings)
            .Select(m => new OpenAiModel(m.Id, "model", 0, m.Provider, m.ContextLength, m.Type)).ToList();
        return TypedResults.Ok(new OpenAiModelList("list", models));
    }

    internal static async Task<Results<Ok<OpenAiChatCompletion>, ServerSentEventsResult<string>, ProblemHttpResult>> CompleteAsync(
        OpenAiChatRequest request, CurrentWorkspace workspace, Caller caller, ModelCatalog catalog, TimeProvider clock, IOptions<JsonOptions> json,
        ILoggerFactory loggers, CancellationToken ct)
    {
        if (OpenAiRequests.Read(request, out var messages, out var options) is { } invalid)
        {
            return invalid;
        }
        var model = await catalog.ResolveAsync(request.Model!, ModelCaller.Of(caller, workspace.Id), ct);
        if (model is null)
        {
            return OpenAiErrors.ModelNotFound(request.Model!);
        }
        var answer = new Answer($"chatcmpl-{Guid.CreateVersion7():N}", clock.GetUtcNow().ToUnixTimeSeconds(), request.Model!);
        if (!request.Stream)
        {
            try
            {
                return TypedResults.Ok(answer.Whole(await model.Client.GetResponseAsync(messages, options, ct)));
            }
            catch (ArgumentException ex) when (ex.ParamName == "messages")
            {
                return OpenAiErrors.ContextLengthExceeded(ex.Message);
            }
        }
        // The first update is awaited here, so that a model that cannot answer is an error status, not a broken stream.
        var stream = model.Client.GetStreamingResponseAsync(messages, options, ct).ReadAheadAsync(ct: ct).GetAsyncEnumerator(ct);
        bool hasFirst;
        try
        {
            hasFirst = await stream.MoveNextAsync();
        }
        catch (Exception ex)
        {
            await stream.DisposeAsync();
            if (ex is ArgumentException { ParamName: "messages" })
            {
                return OpenAiErrors.ContextLengthExceeded(ex.Message);
            }
            throw;
        }
        var includeUsage = request.StreamOptions?.IncludeUsage == true;
        var events = answer.Events(stream, hasFirst, includeUsage, json.Value.SerializerOptions, loggers.CreateLogger<OpenAiErrorWriter>(), ct);
        return TypedResults.ServerSentEvents(events);
    }

    /// <summary>One answer's id, creation time and model, and how its updates become OpenAI's objects.</summary>
    private sealed record Answer(string Id, long Created, string Model)
    {
        public OpenAiChatCompletion Whole(ChatResponse response) =>
            new(Id, "chat.completion", Created, Model,
                [new OpenAiChoice(0, new OpenAiAnswer("assistant", response.Text), FinishReason(response.FinishReason))],
                Usage(response.Usage));

        public async IAsyncEnumerable<SseItem<string>> Events(
            IAsyncEnumerator<ChatResponseUpdate> stream, bool hasFirst, bool includeUsage, JsonSerializerOptions json, ILogger logger,
            [EnumeratorCancellation] CancellationToken ct)
        {
            await using (stream)
            {
                ChatFinishReason? finish = null;
                UsageDetails? usage = null;
                var role = "assistant";
                for (var more = hasFirst; more;)
                {
                    var update = stream.Current;
                    finish = update.FinishReason ?? finish;
                    foreach (var content in update.Contents.OfType<UsageContent>())
                    {
                        usage = content.Details;
                    }
                    if (update.Text is { Length: > 0 } text)
                    {
                        yield return Event(Chunk(new OpenAiDelta(role, text), null), json);
                        role = null;
                    }
                    (more, var failure) = await NextAsync(stream, ct);
                    if (failure is not null)
                    {
                        // The status went out with the first token: what is left is to say so in the stream, as
                        // OpenAI-compatible servers do (OpenAI's SDKs raise an error for an event that carries one).
                        OpenAiLog.StreamFailed(logger, Model, failure);
                        yield return new SseItem<string>(JsonSerializer.Serialize(StreamError(failure), json));
                        yield break;
                    }
                }
                ct.ThrowIfCancellationRequested();
                yield return Event(Chunk(new OpenAiDelta(role, null), FinishReason(finish)), json);
                if (includeUsage)
                {
                    yield return Event(new OpenAiChunk(Id, "chat.completion.chunk", Created, Model, [], Usage(usage)), json);
                }
                yield return new SseItem<string>("[DONE]");
            }
        }

        /// <summary>The next update, or the failure that ended the answer early (a cancelled request just ends).</summary>
        private static async Task<(bool More, Exception? Failure)> NextAsync(IAsyncEnumerator<ChatResponseUpdate> stream, CancellationToken ct)
        {
            try
            {
                return (await stream.MoveNextAsync(), null);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                return (false, ex);
            }
        }

        private static OpenAiErrorResponse StreamError(Exception failure) => new(failure switch
        {
            DependencyTimeoutException slow => new OpenAiError(slow.Message, "server_error", null, ProblemCodes.GatewayTimeout),
            DependencyUnavailableException down => new OpenAiError(down.Message, "server_error", null, ProblemCodes.Unavailable),
            _ => new OpenAiError("The model failed in mid-answer; the answer is incomplete.", "server_error", null, ProblemCodes.InternalError),
        });

        private OpenAiChunk Chunk(OpenAiDelta delta, string? finishReason) =>
            new(Id, "chat.completion.chunk", Created, Model, [new OpenAiChunkChoice(0, delta, finishReason)], null);

        private static SseItem<string> Event(OpenAiChunk chunk, JsonSerializerOptions json) => new(JsonSerializer.Serialize(chunk, json));

        private static OpenAiUsage? Usage(UsageDetails? usage) => usage is null ? null : new OpenAiUsage(
            usage.InputTokenCount ?? 0, usage.OutputTokenCount ?? 0, usage.TotalTokenCount ?? (usage.InputTokenCount ?? 0) + (usage.OutputTokenCount ?? 0));

        /// <summary>OpenAI's finish reasons are Microsoft.Extensions.AI's values; an answer that just ended stopped.</summary>
        private static string FinishReason(ChatFinishReason? reason) => reason?.Value ?? ChatFinishReason.Stop.Value;
    }
}
