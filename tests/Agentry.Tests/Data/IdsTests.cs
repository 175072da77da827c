using Agentry.Data;

namespace Agentry.Tests.Data;

public sealed class IdsTests
{
    /// <summary>
    /// Ids made one after another sort in that order however many share a millisecond: as the strings SQLite compares,
    /// and as the bytes PostgreSQL's uuid compares. Guid.CreateVersion7 fails this for ids of one millisecond.
    /// </summary>
    [Fact]
    public void Ids_made_in_one_millisecond_sort_in_the_order_they_were_made()
    {
        var ids = Enumerable.Range(0, 20_000).Select(_ => Ids.New()).ToList();

        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.True(ids.Zip(ids.Skip(1)).All(p => string.CompareOrdinal(p.First.ToString(), p.Second.ToString()) < 0), "string order");
        Assert.True(ids.Zip(ids.Skip(1)).All(p => p.First.ToByteArray(bigEndian: true).AsSpan().SequenceCompareTo(p.Second.ToByteArray(bigEndian: true)) < 0), "byte order");
        Assert.All(ids, id => Assert.Equal((7, 0b10), (id.Version, id.Variant >> 2)));
        // More than one id fell in some millisecond, or the test proved nothing.
        Assert.Contains(ids.GroupBy(Millisecond), g => g.Count() > 1);
    }

    [Fact]
    public void An_id_carries_the_time_it_was_made_at()
    {
        // A little ahead of now, so no id made before it holds a later millisecond (and ids made after it are barely affected).
        var at = DateTimeOffset.UtcNow.AddMilliseconds(50);
        var id = Ids.New(at);
        Assert.Equal(at.ToUnixTimeMilliseconds(), Millisecond(id));
        // An earlier time never makes an earlier id.
        var next = Ids.New(at.AddMinutes(-10));
        Assert.True(string.CompareOrdinal(id.ToString(), next.ToString()) < 0);
    }

    [Fact]
    public async Task Ids_made_on_many_threads_at_once_are_all_distinct()
    {
        var batches = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Enumerable.Range(0, 10_000).Select(_ => Ids.New()).ToList())));

        Assert.Equal(80_000, batches.SelectMany(b => b).Distinct().Count());
        Assert.All(batches, b => Assert.True(b.Zip(b.Skip(1)).All(p => string.CompareOrdinal(p.First.ToString(), p.Second.ToString()) < 0)));
    }

    private static long Millisecond(Guid id)
    {
        var bytes = id.ToByteArray(bigEndian: true);
        return bytes[..6].Aggregate(0L, (value, b) => (value << 8) | b);
    }
}
