using System.Collections.Concurrent;
using Cloud.Unum.USearch;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

/// <summary>
/// The embedded vector provider: one USearch HNSW index per collection (cosine metric, float32), in a file under
/// <see cref="KnowledgeOptions.IndexDirectory"/>, with a small file beside it mapping each key to its document. Both are
/// loaded from disk on first use after a start, never rebuilt. Writes hold the collection's lock exclusively and are saved
/// before they return (to a temporary file, then moved into place, so a crash leaves the previous file); searches share
/// the lock, so they run in parallel with each other but never against a half-done write.
/// </summary>
internal sealed class UsearchVectorIndex(IOptions<KnowledgeOptions> options, ILogger<UsearchVectorIndex> logger) : IVectorIndex, IDisposable
{
    /// <summary>USearch's own default: a loaded index adds with it too (the managed binding cannot change it after a load).</summary>
    private const ulong ExpansionAdd = 128;

    private readonly ConcurrentDictionary<Guid, Lazy<Loaded>> _loaded = new();
    private readonly string _directory = options.Value.IndexDirectory;
    private readonly ulong _connectivity = (ulong)options.Value.IndexConnectivity;

    // USearch searches with max(expansion, count) candidates, and a loaded index forgets the expansion it was made with:
    // asking for at least this many results applies the setting to every index, loaded or new.
    private readonly int _expansionSearch = options.Value.IndexExpansionSearch;

    public Task UpsertAsync(VectorCollection collection, IReadOnlyList<VectorRecord> records, CancellationToken ct)
    {
        collection.CheckDimensions(records);
        if (records.Count == 0)
        {
            return Task.CompletedTask;
        }
        var index = Open(collection);
        index.Lock.EnterWriteLock();
        try
        {
            foreach (var record in records)
            {
                var key = (ulong)record.Key;
                if (index.Documents.ContainsKey(key))
                {
                    index.Index.Remove(key);
                }
            }
            // USearch refuses adds beyond the capacity reserved ahead of them; the batch reserves its room at once.
            index.Index.Add(records.Select(r => (ulong)r.Key).ToArray(), records.Select(r => r.Vector).ToArray());
            foreach (var record in records)
            {
                index.Documents[(ulong)record.Key] = record.DocumentId;
            }
            Save(collection.Id, index);
        }
        finally
        {
            index.Lock.ExitWriteLock();
        }
        return Task.CompletedTask;
    }

    public Task DeleteDocumentAsync(VectorCollection collection, Guid documentId, CancellationToken ct)
    {
        if (OpenExisting(collection) is not { } index)
        {
            return Task.CompletedTask;
        }
        index.Lock.EnterWriteLock();
        try
        {
            var keys = index.Documents.Where(e => e.Value == documentId).Select(e => e.Key).ToList();
            if (keys.Count == 0)
            {
                return Task.CompletedTask;
            }
            foreach (var key in keys)
            {
                index.Index.Remove(key);
                index.Documents.Remove(key);
            }
            Save(collection.Id, index);
        }
        finally
        {
            index.Lock.ExitWriteLock();
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<VectorMatch>> QueryAsync(
        VectorCollection collection, float[] vector, int topK, IReadOnlyCollection<Guid>? documentIds, CancellationToken ct)
    {
        collection.CheckDimensions(vector);
        if (OpenExisting(collection) is not { } index)
        {
            return Task.FromResult<IReadOnlyList<VectorMatch>>([]);
        }
        index.Lock.EnterReadLock();
        try
        {
            var size = index.Documents.Count;
            if (size == 0)
            {
                return Task.FromResult<IReadOnlyList<VectorMatch>>([]);
            }
            // With a filter, ask for more until enough pass it or the whole index has been asked.
            for (var count = Math.Min(Math.Max(documentIds is null ? topK : topK * 4, _expansionSearch), size); ; count = Math.Min(count * 4, size))
            {
                index.Index.Search(vector, count, out var keys, out var distances);
                var matches = keys.Select((k, i) => (Key: k, Distance: distances[i]))
                    .Where(m => documentIds is null || (index.Documents.TryGetValue(m.Key, out var doc) && documentIds.Contains(doc)))
                    .Take(topK)
                    .Select(m => new VectorMatch((long)m.Key, 1.0 - m.Distance))
                    .ToList();
                if (matches.Count == topK || count == size)
                {
                    return Task.FromResult<IReadOnlyList<VectorMatch>>(matches);
                }
            }
        }
        finally
        {
            index.Lock.ExitReadLock();
        }
    }

    public Task DropAsync(VectorCollection collection, CancellationToken ct)
    {
        if (_loaded.TryRemove(collection.Id, out var lazy) && lazy.IsValueCreated)
        {
            var index = lazy.Value;
            index.Lock.EnterWriteLock();
            try
            {
                index.Index.Dispose();
            }
            finally
            {
                index.Lock.ExitWriteLock();
            }
        }
        // A node whose index directory is gone (a new machine, a restored database) has nothing to delete.
        if (Directory.Exists(_directory))
        {
            File.Delete(IndexPath(collection.Id));
            File.Delete(KeysPath(collection.Id));
        }
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        foreach (var lazy in _loaded.Values.Where(l => l.IsValueCreated))
        {
            lazy.Value.Index.Dispose();
        }
    }

    private Loaded Open(VectorCollection collection) =>
        _loaded.GetOrAdd(collection.Id, id => new Lazy<Loaded>(() => Load(id, collection.Dimensions))).Value;

    /// <summary>
    /// The index when it has been written to; reads never make one, so a read after a drop cannot leave behind an empty
    /// index of the old length for a collection whose next vectors (a new model's) have another.
    /// </summary>
    private Loaded? OpenExisting(VectorCollection collection) =>
        _loaded.ContainsKey(collection.Id) || File.Exists(IndexPath(collection.Id)) ? Open(collection) : null;

    private Loaded Load(Guid id, int dimensions)
    {
        var path = IndexPath(id);
        if (!File.Exists(path))
        {
            return new Loaded(new USearchIndex(MetricKind.Cos, ScalarKind.Float32, (ulong)dimensions, _connectivity, ExpansionAdd, (ulong)_expansionSearch), []);
        }
        var index = new USearchIndex(path);
        var documents = ReadKeys(KeysPath(id));
        KnowledgeLog.IndexLoaded(logger, id, documents.Count);
        return new Loaded(index, documents);
    }

    private void Save(Guid id, Loaded index)
    {
        Directory.CreateDirectory(_directory);
        var path = IndexPath(id);
        index.Index.Save(path + ".tmp");
        WriteKeys(KeysPath(id) + ".tmp", index.Documents);
        File.Move(KeysPath(id) + ".tmp", KeysPath(id), overwrite: true);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private static Dictionary<ulong, Guid> ReadKeys(string path)
    {
        var documents = new Dictionary<ulong, Guid>();
        if (!File.Exists(path))
        {
            return documents;
        }
        using var reader = new BinaryReader(File.OpenRead(path));
        var count = reader.ReadInt32();
        for (var i = 0; i < count; i++)
        {
            documents[reader.ReadUInt64()] = new Guid(reader.ReadBytes(16));
        }
        return documents;
    }

    private static void WriteKeys(string path, Dictionary<ulong, Guid> documents)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(documents.Count);
        foreach (var (key, document) in documents)
        {
            writer.Write(key);
            writer.Write(document.ToByteArray());
        }
    }

    private string IndexPath(Guid id) => Path.Combine(_directory, $"{id:N}.usearch");

    private string KeysPath(Guid id) => Path.Combine(_directory, $"{id:N}.keys");

    private sealed record Loaded(USearchIndex Index, Dictionary<ulong, Guid> Documents)
    {
        public ReaderWriterLockSlim Lock { get; } = new(LockRecursionPolicy.NoRecursion);
    }
}
