namespace Agentry.Data;

/// <summary>
/// Row ids: UUIDv7 (RFC 9562) whose order is the order this process made them in. <see cref="Ids.New()"/>
/// fills everything after the millisecond with random bits, so two ids of one millisecond sort at random, and lists
/// paged by id (newest first) would show them swapped. Here the 12 bits after the timestamp (<c>rand_a</c>) count
/// within the millisecond (RFC 9562 §6.2, method 1); 62 random bits remain. Should 4,096 ids fall in one
/// millisecond, the count carries into the timestamp, which runs a little ahead rather than repeat or go back.
/// Across processes, ids order by millisecond only.
/// </summary>
public static class Ids
{
    private const int CounterBits = 12;

    // The last id's (Unix milliseconds << 12 | count).
    private static long _last;

    /// <summary>A new id, later than every id this process made before.</summary>
    public static Guid New() => New(DateTimeOffset.UtcNow);

    /// <summary>A new id stamped <paramref name="at"/> (or just after the last one, if that is later).</summary>
    public static Guid New(DateTimeOffset at)
    {
        var candidate = at.ToUnixTimeMilliseconds() << CounterBits;
        long last, next;
        do
        {
            last = Volatile.Read(ref _last);
            next = Math.Max(candidate, last + 1);
        }
        while (Interlocked.CompareExchange(ref _last, next, last) != last);

        Span<byte> bytes = stackalloc byte[16];
        Guid.CreateVersion7(DateTimeOffset.FromUnixTimeMilliseconds(next >> CounterBits)).TryWriteBytes(bytes, bigEndian: true, out _);
        // Byte 6: version 7 in the high nibble, the count's top 4 bits; byte 7: its low 8 bits.
        bytes[6] = (byte)(0x70 | (int)((next >> 8) & 0x0F));
        bytes[7] = (byte)next;
        return new Guid(bytes, bigEndian: true);
    }
}
