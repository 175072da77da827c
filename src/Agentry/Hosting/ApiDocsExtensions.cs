using Scalar.AspNetCore;

namespace Agentry.Hosting;

public static class ApiDocsExtensions
{
    internal static IHostApplicationBuilder AddApiDocs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Agentry API";
            document.Info.Description = "Self-hosted AI automation backend. Errors are RFC 9457 problem details with a stable `code`.";
            return Task.CompletedTask;
        }));
        return builder;
    }

    /// <summary>The OpenAPI document at /openapi/v1.json and an interactive reference at /docs.</summary>
    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapOpenApi("/openapi/{documentName}.json");
        endpoints.MapScalarApiReference("/docs", o => o.WithTitle("Agentry API").WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        return endpoints;
    }
}
