using System.Text.Json;
using Agentry.Data;
using Agentry.Usage;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Agentry.Hosting;

/// <summary>The stable machine codes carried in every problem details body as <c>code</c>.</summary>
public static class ProblemCodes
{
    public const string BadRequest = "bad_request";
    public const string MalformedJson = "malformed_json";
    public const string ValidationFailed = "validation_failed";
    public const string InvalidCursor = "invalid_cursor";
    public const string InvalidSort = "invalid_sort";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not_found";
    public const string MethodNotAllowed = "method_not_allowed";
    public const string Conflict = "conflict";
    public const string PayloadTooLarge = "payload_too_large";
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string RateLimited = "rate_limited";
    public const string InternalError = "internal_error";
    public const string Unavailable = "service_unavailable";
    public const string GatewayTimeout = "gateway_timeout";

    public static string ForStatus(int status) => status switch
    {
        400 => BadRequest,
        401 => Unauthorized,
        403 => Forbidden,
        404 => NotFound,
        405 => MethodNotAllowed,
        409 => Conflict,
        413 => PayloadTooLarge,
        415 => UnsupportedMediaType,
        429 => RateLimited,
        503 => Unavailable,
        504 => GatewayTimeout,
        >= 500 => InternalError,
        _ => "http_" + status,
    };
}

/// <summary>Problem results for handlers: typed, written through the problem details service.</summary>
public static class Problem
{
    public static ProblemHttpResult NotFound(string detail) => Create(404, ProblemCodes.NotFound, detail);

    public static ProblemHttpResult Conflict(string code, string detail) => Create(409, code, detail);

    public static ProblemHttpResult Forbidden(string detail) => Create(403, ProblemCodes.Forbidden, detail);

    public static ProblemHttpResult BadRequest(string code, string detail) => Create(400, code, detail);

    /// <summary>A 413: the body (or a document in it) is larger than allowed; the detail says the limit.</summary>
    public static ProblemHttpResult PayloadTooLarge(string detail) => Create(413, ProblemCodes.PayloadTooLarge, detail);

    /// <summary>A 415: the body's type (or a document's format) is not one the endpoint takes; the detail lists those it does.</summary>
    public static ProblemHttpResult UnsupportedMediaType(string detail) => Create(415, ProblemCodes.UnsupportedMediaType, detail);

    /// <summary>A 422: the request is well formed but cannot be carried out as asked (e.g. an idempotency key reused with another body).</summary>
    public static ProblemHttpResult Unprocessable(string code, string detail) => Create(422, code, detail);

    /// <summary>A 502: a server this request depended on (e.g. a model server) answered, but with a failure.</summary>
    public static ProblemHttpResult BadGateway(string code, string detail) => Create(502, code, detail);

    /// <summary>A 503: a dependency cannot be reached; the caller sets <c>Retry-After</c>.</summary>
    public static ProblemHttpResult Unavailable(string detail) => Create(503, ProblemCodes.Unavailable, detail);

    /// <summary>A 504: a dependency did not finish in the time allowed.</summary>
    public static ProblemHttpResult GatewayTimeout(string code, string detail) => Create(504, code, detail);

    /// <summary>A 400 whose <c>errors</c> name the fields that are wrong.</summary>
    public static ProblemHttpResult Validation(string field, string message) =>
        Validation(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>A 400 whose <c>errors</c> name every field that is wrong.</summary>
    public static ProblemHttpResult Validation(IDictionary<string, string[]> errors) =>
        TypedResults.Problem(new HttpValidationProblemDetails(errors) { Status = StatusCodes.Status400BadRequest });

    private static ProblemHttpResult Create(int status, string code, string detail) =>
        TypedResults.Problem(detail, statusCode: status, extensions: new Dictionary<string, object?> { ["code"] = code });
}

public static class ProblemExtensions
{
    internal static IHostApplicationBuilder AddProblems(this IHostApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = Customize);
        builder.Services.AddExceptionHandler<ApiExceptionHandler>();
        return builder;
    }

    /// <summary>Every problem body gets a <c>code</c>, the request path and (by default) the trace id.</summary>
    private static void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var status = problem.Status ?? context.HttpContext.Response.StatusCode;
        if (problem.Extensions.TryGetValue("code", out var existing) is false || existing is not string)
        {
            problem.Extensions["code"] = problem is HttpValidationProblemDetails && status == 400
                ? ProblemCodes.ValidationFailed
                : ProblemCodes.ForStatus(status);
        }
        if (problem is HttpValidationProblemDetails validation)
        {
            CamelCaseFieldNames(validation);
        }
        problem.Instance ??= context.HttpContext.Request.Path;
        context.HttpContext.Items[ApiMetrics.ProblemCodeItem] = problem.Extensions["code"];
    }

    /// <summary>Field errors name fields as the JSON does ("name", "items[0].slug"), not as C# does.</summary>
    private static void CamelCaseFieldNames(HttpValidationProblemDetails validation)
    {
        if (validation.Errors.Keys.All(key => key.Length == 0 || char.IsLower(key[0])))
        {
            return;
        }
        var renamed = validation.Errors.ToDictionary(
            e => string.Join('.', e.Key.Split('.').Select(JsonNamingPolicy.CamelCase.ConvertName)),
            e => e.Value);
        validation.Errors.Clear();
        foreach (var (key, messages) in renamed)
        {
            validation.Errors[key] = messages;
        }
    }
}

/// <summary>Turns exceptions into problem details: bad requests precisely, anything else as a 500 with a trace id.</summary>
internal sealed class ApiExceptionHandler(IProblemDetailsService problems, ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && context.RequestAborted.IsCancellationRequested)
        {
            HostingLog.RequestAborted(logger, context.Request.Method, context.Request.Path);
            context.Response.StatusCode = 499;
            return true;
        }

        var (status, code, detail) = Describe(exception);
        if (status >= 500)
        {
            HostingLog.UnhandledException(logger, exception, context.Request.Method, context.Request.Path);
        }
        else
        {
            HostingLog.BadRequest(logger, status, code, context.Request.Method, context.Request.Path, exception.Message);
        }

        context.Response.StatusCode = status;
        if (status == 503)
        {
            context.Response.Headers.RetryAfter = "5";
        }
        var problem = new ProblemDetails { Status = status, Detail = detail, Extensions = { ["code"] = code } };
        if (exception is TokenBudgetExhaustedException budget)
        {
            Describe(context, problem, budget);
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }

    /// <summary>Which budget, its limit, what was spent and when it resets; <c>Retry-After</c> is the wait until then.</summary>
    private static void Describe(HttpContext context, ProblemDetails problem, TokenBudgetExhaustedException budget)
    {
        var wait = budget.ResetsAt - context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime;
        context.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        problem.Extensions["budget"] = budget.Budget;
        problem.Extensions["limit"] = budget.Limit;
        problem.Extensions["spent"] = budget.Spent;
        problem.Extensions["resetsAt"] = budget.ResetsAt;
    }

    private static (int Status, string Code, string Detail) Describe(Exception exception) => exception switch
    {
        UnauthorizedAccessException denied =>
            (401, ProblemCodes.Unauthorized, denied.Message),
        BadHttpRequestException { StatusCode: 413 } =>
            (413, ProblemCodes.PayloadTooLarge, "The request body is larger than the server accepts."),
        BadHttpRequestException { InnerException: JsonException json } =>
            (400, ProblemCodes.MalformedJson, "The request body is not valid JSON for this endpoint: " + json.Message),
        BadHttpRequestException { StatusCode: 415 } bad =>
            (415, ProblemCodes.UnsupportedMediaType, bad.Message),
        BadHttpRequestException bad =>
            (bad.StatusCode, ProblemCodes.ForStatus(bad.StatusCode), bad.Message),
        DependencyUnavailableException unavailable =>
            (503, ProblemCodes.Unavailable, unavailable.Message),
        TokenBudgetExhaustedException spent =>
            (429, TokenBudgetExhaustedException.Code, spent.Message),
        DependencyTimeoutException slow =>
            (504, ProblemCodes.GatewayTimeout, slow.Message),
        _ when exception.IsDatabaseOutage() =>
            (503, ProblemCodes.Unavailable, "A dependency of this request is temporarily unavailable; retry shortly."),
        _ => (500, ProblemCodes.InternalError, "An unexpected error occurred. Quote the traceId when reporting it."),
    };
}

/// <summary>A service the request needs (other than the database) cannot be reached: 503 with Retry-After.</summary>
public sealed class DependencyUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A service the request needs answered, but not within the time allowed: 504.</summary>
public sealed class DependencyTimeoutException(string message, Exception? inner = null) : TimeoutException(message, inner);
