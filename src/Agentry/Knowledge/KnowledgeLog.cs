namespace Agentry.Knowledge;

internal static partial class KnowledgeLog
{
    [LoggerMessage(1, LogLevel.Information, "Loaded the vector index of collection {CollectionId} ({Vectors} vectors) from disk")]
    public static partial void IndexLoaded(ILogger logger, Guid collectionId, int vectors);

    [LoggerMessage(2, LogLevel.Warning, "Document {DocumentId}: ingestion step {Step} failed: {Error}")]
    public static partial void StepFailed(ILogger logger, Guid documentId, string step, string error);

    [LoggerMessage(3, LogLevel.Information, "Document {DocumentId} is ready: {Chunks} chunks")]
    public static partial void DocumentReady(ILogger logger, Guid documentId, int chunks);

    [LoggerMessage(4, LogLevel.Warning, "The {Provider} vector server failed a call ({Error}); retry {Attempt} in {Delay}")]
    public static partial void VectorServerRetry(ILogger logger, string provider, int attempt, TimeSpan delay, string error);

    [LoggerMessage(5, LogLevel.Information, "Created {Name} in ChromaDB ({Path})")]
    public static partial void ChromaCreated(ILogger logger, string path, string name);

    [LoggerMessage(6, LogLevel.Information, "Created the {Provider} collection {Name} ({Dimensions} dimensions, cosine)")]
    public static partial void VectorCollectionCreated(ILogger logger, string provider, string name, int dimensions);

    [LoggerMessage(7, LogLevel.Information, "Document {DocumentId} was deleted during its {Step} step; its ingestion stops and its vectors are removed")]
    public static partial void DocumentGone(ILogger logger, Guid documentId, string step);
}
