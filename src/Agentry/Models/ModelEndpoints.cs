using Agentry.Identity;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Agentry.Models;

public static class ModelEndpoints
{
    /// <summary><c>GET /api/v1/models</c>: any signed-in user, or a key or service account with the <c>chat</c> scope.</summary>
    public static IEndpointRouteBuilder MapModels(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/models").WithTags("Models").RequireSignedIn()
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapGet("/", ListAsync).WithName("ListModels")
            .WithSummary("List the models every configured provider offers; a provider that is down is reported, not fatal")
            .RequireScope(ApiKeyScopes.Chat);
        return endpoints;
    }

    internal static async Task<Ok<ModelListResponse>> ListAsync(ModelCatalog catalog, EmbeddingModels embeddings, CancellationToken ct)
    {
        var listings = await catalog.ListAsync(ct);
        return TypedResults.Ok(new ModelListResponse(
            WithEmbeddingModel(listings.SelectMany(l => l.Models), embeddings).ToList(),
            listings.Select(l => new ModelProviderResponse(l.Provider, l.Kind, l.Status, l.Error, l.Models.Count)).ToList()));
    }

    /// <summary>
    /// The chat models, then the embedding model, unless a chat provider already lists a model of that id (an Ollama
    /// provider and Ollama embeddings under the same name): ids stay unique, and the id works for both endpoints.
    /// </summary>
    internal static IEnumerable<ModelResponse> WithEmbeddingModel(IEnumerable<ModelResponse> chat, EmbeddingModels embeddings)
    {
        var listed = chat.ToList();
        return listed.Any(m => m.Id == embeddings.Id) ? listed : [.. listed, embeddings.Describe()];
    }
}
