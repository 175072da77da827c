extern alias PollyCore;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using Agentry.Hosting;
using Microsoft.Extensions.Options;
using PollyCore::Polly;

namespace Agentry.Knowledge;

/// <summary>
/// The <c>chroma</c> vector provider: a ChromaDB server through its HTTP API v2. Agentry's collections live in one tenant
/// and database (both created when missing), one Chroma collection per Agentry collection, named after its id, with the
/// cosine space. A record's Chroma id is its vector key in decimal, its only metadata <c>document_id</c>: deleting a
/// document's vectors and filtering by document are <c>where</c> clauses on it. Chroma reports cosine distance
/// (1 - similarity), so a match scores 1 - distance. Calls that fail for want of a server (no connection, a 5xx, a 429)
/// are retried twice; after that the caller gets <see cref="DependencyUnavailableException"/> (a 503 for a search).
/// </summary>
internal sealed class ChromaVectorIndex : IVectorIndex
{
    public const string HttpClientName = "agentry-chroma";

    /// <summary>The most records sent in one upsert (the server's limit is larger: ~5,000 at 384 dimensions).</summary>
    private const int UpsertBatch = 1_000;

    private const string DocumentField = "document_id";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly IHttpClientFactory _http;
    private readonly ChromaOptions _options;
    private readonly ILogger<ChromaVectorIndex> _logger;
    private readonly ResiliencePipeline _retry;
    private readonly SemaphoreSlim _databaseGate = new(1, 1);
    private readonly ConcurrentDictionary<Guid, string> _ids = new();
    private volatile bool _databaseReady;

    public ChromaVectorIndex(IHttpClientFactory http, IOptions<KnowledgeOptions> options, ILogger<ChromaVectorIndex> logger)
    {
        _http = http;
        _options = options.Value.Chroma;
        _logger = logger;
        _retry = VectorServers.Retry(VectorProviders.Chroma, logger, IsServerDown);
    }

    public async Task UpsertAsync(VectorCollection collection, IReadOnlyList<VectorRecord> records, CancellationToken ct)
    {
        collection.CheckDimensions(records);
        foreach (var batch in records.Chunk(UpsertBatch))
        {
            var body = new UpsertRequest(
                batch.Select(r => Id(r.Key)).ToList(),
                batch.Select(r => r.Vector).ToList(),
                batch.Select(r => new Dictionary<string, string> { [DocumentField] = r.DocumentId.ToString() }).ToList());
            await OnCollectionAsync(collection, create: true, id => SendAsync<JsonElement>(HttpMethod.Post, $"{Records(id)}/upsert", body, ct), ct);
        }
    }

    public Task DeleteDocumentAsync(VectorCollection collection, Guid documentId, CancellationToken ct) =>
        OnCollectionAsync(collection, create: false,
            id => SendAsync<JsonElement>(HttpMethod.Post, $"{Records(id)}/delete", new DeleteRequest(Where([documentId])), ct), ct);

    public async Task<IReadOnlyList<VectorMatch>> QueryAsync(
        VectorCollection collection, float[] vector, int topK, IReadOnlyCollection<Guid>? documentIds, CancellationToken ct)
    {
        collection.CheckDimensions(vector);
        if (topK < 1 || documentIds is { Count: 0 })
        {
            return [];
        }
        var body = new QueryRequest([vector], topK, ["distances"], documentIds is null ? null : Where(documentIds));
        var answer = await OnCollectionAsync(collection, create: false,
            id => SendAsync<QueryResponse>(HttpMethod.Post, $"{Records(id)}/query", body, ct), ct);
        if (answer is null || answer.Ids.Count == 0 || answer.Distances is not { Count: > 0 } distances)
        {
            return [];
        }
        return answer.Ids[0].Select((id, i) => new VectorMatch(long.Parse(id, System.Globalization.CultureInfo.InvariantCulture), 1.0 - distances[0][i])).ToList();
    }

    public async Task DropAsync(VectorCollection collection, CancellationToken ct)
    {
        _ids.TryRemove(collection.Id, out _);
        await EnsureDatabaseAsync(ct);
        try
        {
            await SendAsync<JsonElement>(HttpMethod.Delete, $"{Collections}/{collection.ServerName}", null, ct);
        }
        catch (ChromaException ex) when (ex.Status == HttpStatusCode.NotFound)
        {
            // Never written to, or dropped already: nothing to remove.
        }
    }

    private string Collections => $"tenants/{_options.Tenant}/databases/{_options.Database}/collections";

    private string Records(string id) => $"{Collections}/{id}";

    private static string Id(long key) => key.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static Dictionary<string, object> Where(IEnumerable<Guid> documents) =>
        new() { [DocumentField] = new Dictionary<string, object> { ["$in"] = documents.Select(d => d.ToString()).ToList() } };

    /// <summary>
    /// Runs <paramref name="call"/> on the Chroma collection's id, found (or, for a write, made) once and then remembered.
    /// A remembered id the server no longer knows (another node dropped the collection) is forgotten and looked up again.
    /// A collection that does not exist has no vectors: a read or a delete on it returns the default.
    /// </summary>
    private async Task<T?> OnCollectionAsync<T>(VectorCollection collection, bool create, Func<string, Task<T?>> call, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var id = await CollectionIdAsync(collection, create, ct);
            if (id is null)
            {
                return default;
            }
            try
            {
                return await call(id);
            }
            catch (ChromaException ex) when (ex.Status == HttpStatusCode.NotFound && attempt == 0)
            {
                _ids.TryRemove(new KeyValuePair<Guid, string>(collection.Id, id));
            }
        }
    }

    private async Task<string?> CollectionIdAsync(VectorCollection collection, bool create, CancellationToken ct)
    {
        if (_ids.TryGetValue(collection.Id, out var known))
        {
            return known;
        }
        await EnsureDatabaseAsync(ct);
        ChromaCollection? found;
        if (create)
        {
            var body = new CreateCollectionRequest(collection.ServerName, new { hnsw = new { space = "cosine" } }, GetOrCreate: true);
            found = await SendAsync<ChromaCollection>(HttpMethod.Post, Collections, body, ct);
        }
        else
        {
            found = await FindAsync<ChromaCollection>($"{Collections}/{collection.ServerName}", ct);
        }
        if (found is null)
        {
            return null;
        }
        _ids[collection.Id] = found.Id;
        return found.Id;
    }

    /// <summary>The tenant and the database, made once per process when missing (several nodes making them at once is fine: 409).</summary>
    private async Task EnsureDatabaseAsync(CancellationToken ct)
    {
        if (_databaseReady)
        {
            return;
        }
        await _databaseGate.WaitAsync(ct);
        try
        {
            if (_databaseReady)
            {
                return;
            }
            if (await FindAsync<JsonElement?>($"tenants/{_options.Tenant}", ct) is null)
            {
                await CreateAsync("tenants", _options.Tenant, ct);
            }
            if (await FindAsync<JsonElement?>($"tenants/{_options.Tenant}/databases/{_options.Database}", ct) is null)
            {
                await CreateAsync($"tenants/{_options.Tenant}/databases", _options.Database, ct);
            }
            _databaseReady = true;
        }
        finally
        {
            _databaseGate.Release();
        }
    }

    private async Task CreateAsync(string path, string name, CancellationToken ct)
    {
        try
        {
            await SendAsync<JsonElement>(HttpMethod.Post, path, new { name }, ct);
            KnowledgeLog.ChromaCreated(_logger, path, name);
        }
        catch (ChromaException ex) when (ex.Status == HttpStatusCode.Conflict)
        {
            // Made meanwhile by another node.
        }
    }

    private async Task<T?> FindAsync<T>(string path, CancellationToken ct)
    {
        try
        {
            return await SendAsync<T>(HttpMethod.Get, path, null, ct);
        }
        catch (ChromaException ex) when (ex.Status == HttpStatusCode.NotFound)
        {
            return default;
        }
    }

    /// <summary>
    /// One call, retried while the server is down. A 4xx answer is a <see cref="ChromaException"/> with Chroma's message; a
    /// server still down after the retries is <see cref="DependencyUnavailableException"/>, one too slow <see cref="DependencyTimeoutException"/>.
    /// </summary>
    private async Task<T?> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        if (_options.Url is null)
        {
            throw new DependencyUnavailableException("The vector provider 'chroma' is not configured on this installation (Agentry:Knowledge:Chroma:Url).");
        }
        var content = body is null ? null : JsonSerializer.SerializeToUtf8Bytes(body, Json);
        try
        {
            return await _retry.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(method, path);
                if (content is not null)
                {
                    request.Content = new ByteArrayContent(content) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
                }
                using var response = await _http.CreateClient(HttpClientName).SendAsync(request, token);
                if (response.IsSuccessStatusCode)
                {
                    return await response.Content.ReadFromJsonAsync<T>(Json, token);
                }
                var error = await ErrorAsync(response, token);
                if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    throw new HttpRequestException($"ChromaDB answered {(int)response.StatusCode}: {error}", null, response.StatusCode);
                }
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    throw new DependencyUnavailableException($"ChromaDB refused Agentry's credentials ({(int)response.StatusCode}); check Agentry:Knowledge:Chroma:Token.");
                }
                throw new ChromaException(response.StatusCode, error);
            }, ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested && ex is OperationCanceledException)
        {
            throw new DependencyTimeoutException($"ChromaDB did not answer within {_options.Timeout.TotalSeconds:0.#} s.", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new DependencyUnavailableException($"The vector store (ChromaDB) is unavailable: {ex.Message}", ex);
        }
    }

    /// <summary>No connection, or a server that says it cannot answer now; a caller's own cancellation is not.</summary>
    private static bool IsServerDown(Exception exception, CancellationToken ct) => exception switch
    {
        HttpRequestException { StatusCode: null } => true,
        HttpRequestException { StatusCode: { } status } => (int)status >= 500 || status == HttpStatusCode.TooManyRequests,
        OperationCanceledException => !ct.IsCancellationRequested,
        _ => false,
    };

    /// <summary>Chroma's <c>{"error", "message"}</c>, or the start of the body.</summary>
    private static async Task<string> ErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            if (JsonSerializer.Deserialize<ChromaError>(text, Json) is { Message: { } message } error)
            {
                return $"{error.Error}: {message}";
            }
        }
        catch (JsonException)
        {
        }
        return text.Length > 300 ? text[..300] : text;
    }

    private sealed record CreateCollectionRequest(string Name, object Configuration, bool GetOrCreate);

    private sealed record UpsertRequest(List<string> Ids, List<float[]> Embeddings, List<Dictionary<string, string>> Metadatas);

    private sealed record DeleteRequest(Dictionary<string, object> Where);

    private sealed record QueryRequest(List<float[]> QueryEmbeddings, int NResults, List<string> Include, Dictionary<string, object>? Where);

    private sealed record QueryResponse(List<List<string>> Ids, List<List<double>>? Distances);

    private sealed record ChromaCollection(string Id, string Name);

    private sealed record ChromaError(string? Error, string? Message);
}

/// <summary>A ChromaDB answer that refuses the call (4xx), with the server's message.</summary>
internal sealed class ChromaException(HttpStatusCode status, string message) : Exception($"ChromaDB answered {(int)status}: {message}")
{
    public HttpStatusCode Status { get; } = status;
}
