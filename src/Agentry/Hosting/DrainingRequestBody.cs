using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Agentry.Hosting;

/// <summary>
/// Lets a request whose body is still arriving finish when the node shuts down. Kestrel's graceful
/// shutdown cancels the pending read of every connection's pipe; System.Text.Json reading straight from
/// the request PipeReader sees that as a cancelled read and fails the request. Reading through the body
/// stream does not observe that cancellation, so bodies are read from a pipe over the stream.
/// </summary>
internal static class DrainingRequestBody
{
    public static IApplicationBuilder UseDrainingRequestBody(this IApplicationBuilder app) =>
        app.Use(static (context, next) =>
        {
            if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                context.Features.Set<IRequestBodyPipeFeature>(new StreamBodyPipe(context.Request.Body));
            }
            return next(context);
        });

    private sealed class StreamBodyPipe(Stream body) : IRequestBodyPipeFeature
    {
        public PipeReader Reader { get; } = PipeReader.Create(body, new StreamPipeReaderOptions(leaveOpen: true));
    }
}
