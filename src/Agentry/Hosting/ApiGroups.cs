using Agentry.Identity;

namespace Agentry.Hosting;

/// <summary>The conventions shared by the resource route groups under <c>/api/v1</c>, so each feature states only its own.</summary>
public static class ApiGroups
{
    /// <summary>
    /// A group of routes that need a caller and act in the request's workspace (see <c>CurrentWorkspace</c>):
    /// documented with the problems any of them can answer (a missing header can be a 400, an unknown workspace a 404).
    /// </summary>
    public static RouteGroupBuilder MapWorkspaceResource(this IEndpointRouteBuilder endpoints, string prefix, string tag) =>
        endpoints.MapGroup(prefix).WithTags(tag).RequireSignedIn()
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status500InternalServerError);

    /// <summary>The problems a write with a JSON body can answer beyond its group's: a conflict, a body too large or not JSON.</summary>
    public static RouteHandlerBuilder ProducesWriteProblems(this RouteHandlerBuilder route) =>
        route.ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
}
