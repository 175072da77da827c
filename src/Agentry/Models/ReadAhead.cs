using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Agentry.Models;

/// <summary>
/// Streams a model's answer a little ahead of its reader. An in-process model computes the next token only when it is
/// asked for it, so a reader that writes each token to a socket before asking again adds that write to every token's
/// time. Read ahead, the model's enumeration runs in a task of its own and goes on with the next token while the reader
/// sends the last one; at most <c>capacity</c> updates wait, so a reader that falls behind still holds the model back.
/// </summary>
internal static class ReadAhead
{
    public const int DefaultCapacity = 64;

    /// <summary>
    /// The items of <paramref name="source"/>, enumerated ahead in the background; its exception (or cancellation) reaches
    /// the reader after the items that came before it. A reader that stops early cancels the enumeration and waits for it
    /// to end, so nothing of the source outlives the reader.
    /// </summary>
    public static async IAsyncEnumerable<T> ReadAheadAsync<T>(
        this IAsyncEnumerable<T> source, int capacity = DefaultCapacity, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var producer = Task.Run(() => PumpAsync(source, channel.Writer, stop.Token), CancellationToken.None);
        try
        {
            // WaitToReadAsync throws the exception the source ended with, once the items before it are read.
            while (await channel.Reader.WaitToReadAsync(ct))
            {
                while (channel.Reader.TryRead(out var item))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await producer;
        }
    }

    private static async Task PumpAsync<T>(IAsyncEnumerable<T> source, ChannelWriter<T> writer, CancellationToken ct)
    {
        try
        {
            await foreach (var item in source.WithCancellation(ct))
            {
                await writer.WriteAsync(item, ct);
            }
            writer.TryComplete();
        }
        catch (Exception ex)
        {
            writer.TryComplete(ex);
        }
    }
}
