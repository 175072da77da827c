namespace Agentry.Models;

internal static partial class ModelLog
{
    [LoggerMessage(1, LogLevel.Warning, "Model provider {Provider} could not list its models: {Error}")]
    public static partial void ListFailed(ILogger logger, string provider, string error, Exception exception);

    [LoggerMessage(2, LogLevel.Information, "Loaded GGUF model {Path}: context length {ContextLength}, {Bytes} bytes")]
    public static partial void GgufLoaded(ILogger logger, string path, int contextLength, ulong bytes);

    [LoggerMessage(3, LogLevel.Error, "Could not load GGUF model {Path}")]
    public static partial void GgufLoadFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(4, LogLevel.Warning, "llama.cpp {Level}: {Message}")]
    public static partial void LlamaCppNative(ILogger logger, string level, string message);

    [LoggerMessage(5, LogLevel.Warning, "Model provider {Provider}: endpoint {Endpoint} is down for {BreakDuration} (circuit open): {Error}")]
    public static partial void EndpointDown(ILogger logger, string provider, string endpoint, TimeSpan breakDuration, string error);

    [LoggerMessage(6, LogLevel.Information, "Model provider {Provider}: endpoint {Endpoint} answers again (circuit closed)")]
    public static partial void EndpointUp(ILogger logger, string provider, string endpoint);

    [LoggerMessage(7, LogLevel.Information, "Model provider {Provider}: {Count} endpoints; added {Added}, removed {Removed}")]
    public static partial void EndpointsChanged(ILogger logger, string provider, int count, IReadOnlyList<string> added, IReadOnlyList<string> removed);
}
