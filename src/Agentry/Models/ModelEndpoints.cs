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

    internal static async Task<Ok<ModelListResponse>> ListAsync(ModelCatalog catalog, CancellationToken ct)
    {
        var listings = await catalog.ListAsync(ct);
        return TypedResults.Ok(new ModelListResponse(
            listings.SelectMany(l => l.Models).ToList(),
            listings.Select(l => new ModelProviderResponse(l.Provider, l.Kind, l.Status, l.Error, l.Models.Count)).ToList()));
    }
}
