extern alias PollyCore;
using System.Collections.Concurrent;
using Agentry.Hosting;
using Grpc.Core;
using PollyCore::Polly;
using Qdrant.Client;
using Qdrant.Client.Grpc;

namespace Agentry.Knowledge;

/// <summary>
/// The <c>qdrant</c> vector provider: a Qdrant server through its gRPC API (the Qdrant.Client package). One Qdrant
/// collection per Agentry collection, named after its id, with one unnamed dense vector of the collection's length and
/// the cosine distance (Qdrant scores it as cosine similarity). A point's id is the vector key (an unsigned 64-bit
/// number; keys are positive), its payload <c>document_id</c>, indexed as a keyword: deleting a document's vectors and
/// filtering by document are filters on it. Calls the server cannot take now (unavailable) are retried twice; after that
/// the caller gets <see cref="DependencyUnavailableException"/> (a 503 for a search).
/// </summary>
internal sealed class QdrantVectorIndex(
    [FromKeyedServices(VectorProviders.Qdrant)] QdrantClient client, ILogger<QdrantVectorIndex> logger) : IVectorIndex
{
    private const string DocumentField = "document_id";

    private readonly ResiliencePipeline _retry = VectorServers.Retry(VectorProviders.Qdrant, logger, IsServerDown);

    /// <summary>The collections known to exist on the server (made or seen by this process).</summary>
    private readonly ConcurrentDictionary<Guid, bool> _known = new();

    /// <summary>The client for <see cref="QdrantOptions"/>; one per process (it holds the gRPC channel).</summary>
    public static QdrantClient Connect(QdrantOptions options, ILoggerFactory loggers) => options.Url is null
        ? throw new DependencyUnavailableException("The vector provider 'qdrant' is not configured on this installation (Agentry:Knowledge:Qdrant:Url).")
        : new QdrantClient(new Uri(options.Url), options.ApiKey, options.Timeout, loggers);

    public async Task UpsertAsync(VectorCollection collection, IReadOnlyList<VectorRecord> records, CancellationToken ct)
    {
        collection.CheckDimensions(records);
        if (records.Count == 0)
        {
            return;
        }
        var points = records.Select(r => new PointStruct
        {
            Id = new PointId { Num = (ulong)r.Key },
            Vectors = r.Vector,
            Payload = { [DocumentField] = r.DocumentId.ToString() },
        }).ToList();
        for (var attempt = 0; ; attempt++)
        {
            await EnsureAsync(collection, ct);
            try
            {
                await CallAsync(token => client.UpsertAsync(collection.ServerName, points, wait: true, cancellationToken: token), ct);
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound && attempt == 0)
            {
                // Dropped by another node since this one saw it: made again.
                _known.TryRemove(collection.Id, out _);
            }
        }
    }

    public async Task DeleteDocumentAsync(VectorCollection collection, Guid documentId, CancellationToken ct)
    {
        var filter = new Filter { Must = { Conditions.MatchKeyword(DocumentField, documentId.ToString()) } };
        try
        {
            await CallAsync(token => client.DeleteAsync(collection.ServerName, filter, wait: true, cancellationToken: token), ct);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            // No collection, no vectors.
        }
    }

    public async Task<IReadOnlyList<VectorMatch>> QueryAsync(
        VectorCollection collection, float[] vector, int topK, IReadOnlyCollection<Guid>? documentIds, CancellationToken ct)
    {
        collection.CheckDimensions(vector);
        if (topK < 1 || documentIds is { Count: 0 })
        {
            return [];
        }
        var filter = documentIds is null
            ? null
            : new Filter { Must = { Conditions.Match(DocumentField, documentIds.Select(d => d.ToString()).ToList()) } };
        var query = new Query { Nearest = new VectorInput { Dense = new DenseVector { Data = { vector } } } };
        try
        {
            var points = await CallAsync(token => client.QueryAsync(
                collection.ServerName, query, filter: filter, limit: (ulong)topK,
                payloadSelector: new WithPayloadSelector { Enable = false }, cancellationToken: token), ct);
            return points.Select(p => new VectorMatch((long)p.Id.Num, p.Score)).ToList();
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return [];
        }
    }

    public async Task DropAsync(VectorCollection collection, CancellationToken ct)
    {
        _known.TryRemove(collection.Id, out _);
        try
        {
            await CallAsync(async token =>
            {
                await client.DeleteCollectionAsync(collection.ServerName, cancellationToken: token);
                return true;
            }, ct);
        }
        catch (Exception ex) when (ex is QdrantException or RpcException { StatusCode: StatusCode.NotFound })
        {
            // Qdrant answers "not deleted" (false) for a collection that does not exist: never written to, or dropped already.
        }
    }

    private async Task EnsureAsync(VectorCollection collection, CancellationToken ct)
    {
        if (_known.ContainsKey(collection.Id))
        {
            return;
        }
        var name = collection.ServerName;
        if (!await CallAsync(token => client.CollectionExistsAsync(name, token), ct))
        {
            try
            {
                await CallAsync(async token =>
                {
                    await client.CreateCollectionAsync(
                        name, new VectorParams { Size = (ulong)collection.Dimensions, Distance = Distance.Cosine }, cancellationToken: token);
                    return true;
                }, ct);
                await CallAsync(token => client.CreatePayloadIndexAsync(name, DocumentField, PayloadSchemaType.Keyword, cancellationToken: token), ct);
                KnowledgeLog.VectorCollectionCreated(logger, VectorProviders.Qdrant, name, collection.Dimensions);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.AlreadyExists)
            {
                // Made meanwhile by another node (which indexes its payload).
            }
        }
        _known[collection.Id] = true;
    }

    /// <summary>
    /// One call, retried while the server is unavailable; then <see cref="DependencyUnavailableException"/>, or
    /// <see cref="DependencyTimeoutException"/> past the deadline. Other gRPC errors (not found, invalid) reach the caller.
    /// </summary>
    private async Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await _retry.ExecuteAsync(async token => await call(token), ct);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            throw new DependencyUnavailableException($"The vector store (Qdrant) is unavailable: {ex.Status.Detail}", ex);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            throw new DependencyUnavailableException("Qdrant refused Agentry's credentials; check Agentry:Knowledge:Qdrant:ApiKey.", ex);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.DeadlineExceeded)
        {
            throw new DependencyTimeoutException("Qdrant did not answer in time.", ex);
        }
    }

    private static bool IsServerDown(Exception exception, CancellationToken ct) =>
        exception is RpcException { StatusCode: StatusCode.Unavailable };
}
