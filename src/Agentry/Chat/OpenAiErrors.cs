using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Agentry.Chat;

/// <summary>
/// Writes every error under <c>/v1</c> in OpenAI's envelope instead of problem details: OpenAI's client libraries read
/// <c>error.message</c> from it, and the tools that point them at Agentry show that message to their users. It is a
/// problem details writer, so the errors that arise outside the handlers (401 from authentication, 403 from the access
/// rules, 429 from the rate limiter, 503 from the exception handler, 404 and 405 from routing) take the same shape.
/// </summary>
internal sealed class OpenAiErrorWriter : IProblemDetailsWriter
{
    /// <summary>The problem details extension a handler sets to name the request field at fault.</summary>
    public const string ParamExtension = "param";

    public bool CanWrite(ProblemDetailsContext context) => OpenAiEndpoints.IsOpenAiPath(context.HttpContext.Request.Path);

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        var status = problem.Status ?? http.Response.StatusCode;
        var code = problem.Extensions.TryGetValue("code", out var value) && value is string given ? given : ProblemCodes.ForStatus(status);
        var param = problem.Extensions.TryGetValue(ParamExtension, out var named) ? named as string : null;
        var message = problem.Detail ?? problem.Title ?? code;
        if (problem is HttpValidationProblemDetails { Errors.Count: > 0 } validation)
        {
            var (field, messages) = validation.Errors.First();
            param ??= field;
            message = problem.Detail ?? string.Join(" ", messages);
        }
        http.Items[ApiMetrics.ProblemCodeItem] = code;
        http.Response.StatusCode = status;
        return new ValueTask(http.Response.WriteAsJsonAsync(new OpenAiErrorResponse(new OpenAiError(message, Type(status), param, code))));
    }

    /// <summary>The error types OpenAI's API and the servers that copy it use, by status.</summary>
    private static string Type(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}

/// <summary>The errors the <c>/v1</c> handlers answer themselves (written in OpenAI's envelope by <see cref="OpenAiErrorWriter"/>).</summary>
internal static class OpenAiErrors
{
    public static ProblemHttpResult Invalid(string param, string message) =>
        Create(StatusCodes.Status400BadRequest, ProblemCodes.ValidationFailed, param, message);

    public static ProblemHttpResult ModelNotFound(string model, string hint = "GET /v1/models lists the models there are.") =>
        Create(StatusCodes.Status404NotFound, "model_not_found", "model", $"The model '{model}' does not exist; {hint}");

    public static ProblemHttpResult ContextLengthExceeded(string message) => InputTooLong("messages", message);

    public static ProblemHttpResult InputTooLong(string param, string message) =>
        Create(StatusCodes.Status400BadRequest, "context_length_exceeded", param, message);

    private static ProblemHttpResult Create(int status, string code, string param, string message) =>
        TypedResults.Problem(message, statusCode: status,
            extensions: new Dictionary<string, object?> { ["code"] = code, [OpenAiErrorWriter.ParamExtension] = param });
}
