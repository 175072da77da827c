using System.Buffers;
using Agentry.Knowledge;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Qdrant.Client;
using Qdrant.Client.Grpc;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// A stand-in for a Qdrant server at the gRPC wire, for want of a Qdrant server on these machines: a
/// <see cref="CallInvoker"/> under the real <see cref="QdrantClient"/> that takes Qdrant's own gRPC messages (each request
/// and answer goes through the method's protobuf marshallers, as on the wire) and answers the calls the qdrant provider
/// makes from an in-memory store, with exact cosine scores (vectors normalised on upsert, as Qdrant does for cosine).
/// Errors carry the status codes Qdrant uses: NotFound for a missing collection, AlreadyExists, InvalidArgument for a
/// vector of the wrong length. A call or a filter it does not model is answered Unimplemented / InvalidArgument, so a
/// provider that starts using one fails here instead of passing untested.
/// </summary>
public sealed class QdrantWireStandIn : CallInvoker
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, StoredCollection> _collections = [];

    /// <summary>The methods called, by full gRPC name (e.g. <c>/qdrant.Points/Upsert</c>).</summary>
    public List<string> Calls { get; } = [];

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        Answer(method, options, request);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var answer = Task.Run(() => Answer(method, options, request));
        return new AsyncUnaryCall<TResponse>(answer, Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not modelled by the stand-in."));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not modelled by the stand-in."));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not modelled by the stand-in."));

    /// <summary>The request as the server would parse it from its bytes, the answer as the client would parse it from the server's.</summary>
    private TResponse Answer<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options, TRequest request)
        where TRequest : class where TResponse : class
    {
        options.CancellationToken.ThrowIfCancellationRequested();
        var received = RoundTrip(method.RequestMarshaller, request);
        object response;
        lock (_lock)
        {
            Calls.Add(method.FullName);
            response = (method.FullName, (object)received) switch
            {
                ("/qdrant.Qdrant/HealthCheck", HealthCheckRequest) => new HealthCheckReply { Title = "qdrant wire stand-in", Version = "stand-in" },
                ("/qdrant.Collections/CollectionExists", CollectionExistsRequest r) =>
                    new CollectionExistsResponse { Result = new CollectionExists { Exists = _collections.ContainsKey(r.CollectionName) } },
                ("/qdrant.Collections/Create", CreateCollection r) => Create(r),
                ("/qdrant.Collections/Delete", DeleteCollection r) =>
                    new CollectionOperationResponse { Result = _collections.Remove(r.CollectionName) },
                ("/qdrant.Points/CreateFieldIndex", CreateFieldIndexCollection r) => Updated(Find(r.CollectionName).Indexed.Add(r.FieldName)),
                ("/qdrant.Points/Upsert", UpsertPoints r) => Upsert(r),
                ("/qdrant.Points/Delete", DeletePoints r) => Delete(r),
                ("/qdrant.Points/Query", QueryPoints r) => Query(r),
                _ => throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not modelled by the stand-in.")),
            };
        }
        return RoundTrip(method.ResponseMarshaller, (TResponse)response);
    }

    /// <summary>The message written to bytes and read back by the method's own (protobuf) marshaller.</summary>
    private static T RoundTrip<T>(Marshaller<T> marshaller, T message)
    {
        var written = new Written();
        marshaller.ContextualSerializer(message, written);
        return marshaller.ContextualDeserializer(new Received(written.Payload));
    }

    private sealed class Written : SerializationContext
    {
        private ArrayBufferWriter<byte>? _writer;

        public byte[] Payload { get; private set; } = [];

        public override void Complete(byte[] payload) => Payload = payload;

        public override IBufferWriter<byte> GetBufferWriter() => _writer ??= new ArrayBufferWriter<byte>();

        public override void Complete() => Payload = _writer?.WrittenSpan.ToArray() ?? [];
    }

    private sealed class Received(byte[] payload) : DeserializationContext
    {
        public override int PayloadLength => payload.Length;

        public override byte[] PayloadAsNewBuffer() => payload.ToArray();

        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);
    }

    private CollectionOperationResponse Create(CreateCollection request)
    {
        if (_collections.ContainsKey(request.CollectionName))
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"Collection `{request.CollectionName}` already exists!"));
        }
        var parameters = request.VectorsConfig?.Params
            ?? throw new RpcException(new Status(StatusCode.InvalidArgument, "The stand-in models one unnamed dense vector per point."));
        if (parameters.Distance != Distance.Cosine)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"The stand-in models the cosine distance, not {parameters.Distance}."));
        }
        _collections[request.CollectionName] = new StoredCollection((int)parameters.Size);
        return new CollectionOperationResponse { Result = true };
    }

    private PointsOperationResponse Upsert(UpsertPoints request)
    {
        var collection = Find(request.CollectionName);
        var points = request.Points.Select(p =>
        {
            var vector = p.Vectors.Vector;
            var data = vector.VectorCase == Vector.VectorOneofCase.Dense
                ? vector.Dense.Data
                : throw new RpcException(new Status(StatusCode.InvalidArgument, $"The stand-in models dense vectors, not {vector.VectorCase}."));
            if (data.Count != collection.Dimensions)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument,
                    $"Wrong input: Vector dimension error: expected dim: {collection.Dimensions}, got {data.Count}"));
            }
            return (Id: p.Id.Num, Point: new StoredPoint(Normalised(data), p.Payload.ToDictionary(e => e.Key, e => e.Value.StringValue)));
        }).ToList();
        foreach (var (id, point) in points)
        {
            collection.Points[id] = point;
        }
        return Updated(true);
    }

    private PointsOperationResponse Delete(DeletePoints request)
    {
        var collection = Find(request.CollectionName);
        var filter = request.Points.Filter ?? throw new RpcException(new Status(StatusCode.InvalidArgument, "The stand-in models deleting by filter."));
        foreach (var id in collection.Points.Where(p => Matches(filter, p.Value)).Select(p => p.Key).ToList())
        {
            collection.Points.Remove(id);
        }
        return Updated(true);
    }

    private QueryResponse Query(QueryPoints request)
    {
        var collection = Find(request.CollectionName);
        if (request.Query?.Nearest?.Dense is not { } dense)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "The stand-in models nearest-neighbour queries by a dense vector."));
        }
        if (dense.Data.Count != collection.Dimensions)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"Wrong input: Vector dimension error: expected dim: {collection.Dimensions}, got {dense.Data.Count}"));
        }
        var query = Normalised(dense.Data);
        var response = new QueryResponse();
        response.Result.AddRange(collection.Points
            .Where(p => request.Filter is null || Matches(request.Filter, p.Value))
            .Select(p => new ScoredPoint { Id = new PointId { Num = p.Key }, Score = Dot(query, p.Value.Vector) })
            .OrderByDescending(p => p.Score).ThenBy(p => p.Id.Num)
            .Skip((int)request.Offset).Take((int)(request.HasLimit ? request.Limit : 10)));
        return response;
    }

    /// <summary>Every <c>must</c> condition a keyword match (one keyword, or any of several) on a payload field.</summary>
    private static bool Matches(Filter filter, StoredPoint point)
    {
        if (filter.Should.Count > 0 || filter.MustNot.Count > 0 || filter.MinShould is not null)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "The stand-in models filters of must conditions only."));
        }
        return filter.Must.All(condition =>
        {
            var match = condition.Field?.Match ?? throw new RpcException(new Status(StatusCode.InvalidArgument, "The stand-in models field matches only."));
            var value = point.Payload.GetValueOrDefault(condition.Field.Key);
            return match.MatchValueCase switch
            {
                Match.MatchValueOneofCase.Keyword => value == match.Keyword,
                Match.MatchValueOneofCase.Keywords => value is not null && match.Keywords.Strings.Contains(value),
                _ => throw new RpcException(new Status(StatusCode.InvalidArgument, $"The stand-in does not model {match.MatchValueCase} matches.")),
            };
        });
    }

    private StoredCollection Find(string name) => _collections.TryGetValue(name, out var collection)
        ? collection
        : throw new RpcException(new Status(StatusCode.NotFound, $"Not found: Collection `{name}` doesn't exist!"));

    private static PointsOperationResponse Updated(bool _) =>
        new() { Result = new UpdateResult { OperationId = 0, Status = UpdateStatus.Completed } };

    private static float[] Normalised(IList<float> data)
    {
        var norm = Math.Sqrt(data.Sum(x => (double)x * x));
        return data.Select(x => norm == 0 ? 0f : (float)(x / norm)).ToArray();
    }

    private static float Dot(float[] a, float[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++)
        {
            sum += (double)a[i] * b[i];
        }
        return (float)sum;
    }

    private sealed record StoredCollection(int Dimensions)
    {
        public Dictionary<ulong, StoredPoint> Points { get; } = [];
        public HashSet<string> Indexed { get; } = [];
    }

    private sealed record StoredPoint(float[] Vector, Dictionary<string, string> Payload);
}

/// <summary>
/// The qdrant provider through the real Qdrant.Client over <see cref="QdrantWireStandIn"/> (no Qdrant server can be
/// installed here): what it sends and reads are Qdrant's real gRPC messages; the store behind them is the stand-in's.
/// </summary>
public sealed class QdrantVectorIndexContract : VectorIndexContract, IDisposable
{
    private readonly QdrantWireStandIn _wire = new();
    private readonly ServiceProvider _services;

    public QdrantVectorIndexContract() =>
        _services = Providers(new() { ["Agentry:Knowledge:Qdrant:Url"] = "http://127.0.0.1:6334" },
            services => services.AddKeyedSingleton(VectorProviders.Qdrant, new QdrantClient(new QdrantGrpcClient(_wire))));

    protected override IVectorIndex Index => _services.GetRequiredKeyedService<IVectorIndex>(VectorProviders.Qdrant);

    [Fact]
    public async Task The_provider_makes_a_cosine_collection_with_an_indexed_document_field_once()
    {
        var collection = new VectorCollection(Guid.CreateVersion7(), 3);
        await Index.UpsertAsync(collection, [new(1, Guid.CreateVersion7(), [1, 0, 0])], default);
        await Index.UpsertAsync(collection, [new(2, Guid.CreateVersion7(), [0, 1, 0])], default);
        Assert.Equal(1, _wire.Calls.Count(c => c == "/qdrant.Collections/Create"));
        Assert.Equal(1, _wire.Calls.Count(c => c == "/qdrant.Points/CreateFieldIndex"));
        Assert.Equal(2, _wire.Calls.Count(c => c == "/qdrant.Points/Upsert"));
    }

    public void Dispose() => _services.Dispose();
}
