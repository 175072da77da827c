using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

internal static class SearchEndpoints
{
    public const int DefaultTopK = 5;

    public static void Map(RouteGroupBuilder group) =>
        group.MapPost("/{id:guid}/search", SearchAsync).WithName("SearchCollection")
            .WithSummary("Search a collection by vector, keyword or both (hybrid, by reciprocal rank fusion)")
            .RequireScope(ApiKeyScopes.KnowledgeRead).RequireCurrentWorkspaceRole(Roles.Viewer)
            .ProducesProblem(StatusCodes.Status409Conflict)
            // The collection's vector server (ChromaDB, Qdrant) cannot be reached, or does not answer in time.
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable).ProducesProblem(StatusCodes.Status504GatewayTimeout);

    internal static async Task<Results<Ok<SearchResponse>, ProblemHttpResult>> SearchAsync(
        Guid id, SearchRequest request, CurrentWorkspace workspace, AppDbContext db, KnowledgeSearch search, EmbeddingModels models,
        IOptions<KnowledgeOptions> options, CancellationToken ct)
    {
        var max = options.Value.MaxTopK;
        var topK = request.TopK ?? Math.Min(DefaultTopK, max);
        if (topK < 1 || topK > max)
        {
            return Problem.Validation("topK", $"topK must be between 1 and {max}.");
        }
        if (string.IsNullOrWhiteSpace(request.Query))
        {
            return Problem.Validation("query", "The query must not be empty.");
        }
        var collection = await CollectionEndpoints.FindAsync(db, workspace.Id, id, ct);
        if (collection is null)
        {
            return CollectionEndpoints.NotFound(id);
        }
        var mode = request.Mode ?? SearchModes.Hybrid;
        if (mode != SearchModes.Keyword && collection.EmbeddingModel != models.Id)
        {
            return Problem.Conflict("embedding_model_unavailable",
                $"The collection's vectors were made by '{collection.EmbeddingModel}', which this installation does not serve (it serves '{models.Id}'); search by keyword, or change the collection's model to re-embed it.");
        }
        return TypedResults.Ok(new SearchResponse(mode, await search.SearchAsync(collection, request.Query, topK, mode, request.Filter, ct)));
    }
}
