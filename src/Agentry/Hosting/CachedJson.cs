using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

/// <summary>
/// A 200 response whose JSON body was serialized once, when it was cached, and is written as it is on every
/// hit: for a cached list, serializing it again was most of the work of answering. The OpenAPI document
/// still describes the body as <typeparamref name="T"/>, and the bytes are what the API's JSON options make
/// of a <typeparamref name="T"/>, so a client cannot tell the difference.
/// </summary>
public sealed class CachedJson<T> : IResult, IStatusCodeHttpResult, IEndpointMetadataProvider
{
    private readonly byte[] _utf8;

    private CachedJson(byte[] utf8) => _utf8 = utf8;

    public int? StatusCode => StatusCodes.Status200OK;

    /// <summary>What to cache: the body as the API would write it.</summary>
    public static byte[] Serialize(T value, IOptions<JsonOptions> options) =>
        JsonSerializer.SerializeToUtf8Bytes(value, options.Value.SerializerOptions);

    public static CachedJson<T> Of(byte[] utf8) => new(utf8);

    /// <summary>The body, for callers that answer with it in another form (e.g. an MCP tool result).</summary>
    internal ReadOnlyMemory<byte> Utf8 => _utf8;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = _utf8.Length;
        return response.Body.WriteAsync(_utf8, httpContext.RequestAborted).AsTask();
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(T), ["application/json"]));
}
