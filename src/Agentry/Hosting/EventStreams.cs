using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Agentry.Hosting;

/// <summary>One page of a stream's events read from the log, and whether more may follow at once.</summary>
public readonly record struct EventPage<T>(List<T> Items, bool Full);

/// <summary>
/// What every event log endpoint shares (task events, conversation events): where a reader resumes (<c>?after=</c> or
/// <c>Last-Event-ID</c>), whether it asked for Server-Sent Events, and the live tail of the log, which re-reads the
/// database when this node's <see cref="EventSignal"/> fires or a poll interval passes (changes made on other nodes).
/// </summary>
public static class EventStreams
{
    public const string LastEventIdHeader = "Last-Event-ID";
    public const int PageSize = 500;
    public static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>The sequence number a read starts after: <c>Last-Event-ID</c> wins over <c>?after=</c>; a 400 when either is wrong.</summary>
    public static ProblemHttpResult? ResolveFrom(long? after, string? lastEventId, out long from)
    {
        from = after ?? 0;
        if (lastEventId is not null && !long.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out from))
        {
            return Problem.Validation(LastEventIdHeader, "Last-Event-ID must be an event's sequence number.");
        }
        return from < 0 ? Problem.Validation("after", "after must be 0 or more.") : null;
    }

    /// <summary>Whether the request asks for <c>text/event-stream</c>; when it does, the response is marked as not to be cached or buffered.</summary>
    public static bool WantsEventStream(HttpContext context)
    {
        var wants = context.Request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase));
        if (wants)
        {
            MarkUnbuffered(context);
        }
        return wants;
    }

    /// <summary>Tells caches and proxies (nginx's <c>X-Accel-Buffering</c>) to pass a stream on as it comes.</summary>
    public static void MarkUnbuffered(HttpContext context)
    {
        context.Response.Headers[HeaderNames.CacheControl] = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
    }

    /// <summary>An event as an SSE item: its type is the SSE event name, its sequence number the SSE id.</summary>
    public static SseItem<T> ToSseItem<T>(T item, string type, long seq) =>
        new(item, type) { EventId = seq.ToString(CultureInfo.InvariantCulture) };

    /// <summary>
    /// The log after <paramref name="from"/>, live: pages as they are read, then waits for more, until the stream is
    /// final (<paramref name="isFinal"/> is asked before each read, so a final state's events are all in that read).
    /// </summary>
    public static async IAsyncEnumerable<SseItem<T>> TailAsync<T>(
        Guid streamId, long from, Func<long, CancellationToken, Task<EventPage<T>>> read, Func<CancellationToken, Task<bool>> isFinal,
        Func<T, (string Type, long Seq)> describe, EventSignal signal, [EnumeratorCancellation] CancellationToken ct)
    {
        var last = from;
        while (!ct.IsCancellationRequested)
        {
            var final = await isFinal(ct);
            var (page, full) = await read(last, ct);
            foreach (var item in page)
            {
                var (type, seq) = describe(item);
                yield return ToSseItem(item, type, seq);
                last = seq;
            }
            if (full)
            {
                continue;
            }
            if (final)
            {
                yield break;
            }
            await signal.WaitAsync(streamId, Poll, ct);
        }
    }
}
