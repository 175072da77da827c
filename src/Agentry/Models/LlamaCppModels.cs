using System.Collections.Concurrent;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Agentry.Models;

/// <summary>
/// The GGUF models loaded in this process: one <see cref="LLamaWeights"/> per file, loaded on first use and shared by
/// every request and provider that names the file (llama.cpp's weights are read-only; each generation gets a context
/// of its own). Disposed with the host.
/// </summary>
internal sealed class LlamaCppModels(ILogger<LlamaCppModels> logger) : IAsyncDisposable
{
    private static readonly Lock NativeLock = new();
    private readonly ConcurrentDictionary<string, Lazy<Task<LLamaWeights>>> _loaded = new(StringComparer.Ordinal);

    public Task<LLamaWeights> GetAsync(string path, CancellationToken ct)
    {
        var fullPath = System.IO.Path.GetFullPath(path);
        var load = _loaded.GetOrAdd(fullPath, file => new Lazy<Task<LLamaWeights>>(() => LoadAsync(file)));
        return load.Value.WaitAsync(ct);
    }

    private async Task<LLamaWeights> LoadAsync(string path)
    {
        try
        {
            UseCpuBackend(logger);
            var weights = await LLamaWeights.LoadFromFileAsync(new ModelParams(path) { GpuLayerCount = 0 });
            ModelLog.GgufLoaded(logger, path, weights.ContextSize, weights.SizeInBytes);
            return weights;
        }
        catch (Exception ex)
        {
            // A failed load is not remembered: the next request tries again (the file may have been replaced).
            _loaded.TryRemove(path, out _);
            ModelLog.GgufLoadFailed(logger, path, ex);
            throw;
        }
    }

    /// <summary>
    /// Picks llama.cpp's CPU build before the native library loads (its automatic fall-back from CUDA or Vulkan fails
    /// on machines without them) and sends llama.cpp's own log lines, warnings and worse, to ours. Once per process.
    /// </summary>
    internal static void UseCpuBackend(ILogger logger)
    {
        lock (NativeLock)
        {
            if (NativeLibraryConfig.LLama.LibraryHasLoaded)
            {
                return;
            }
            NativeLibraryConfig.All.WithCuda(false).WithVulkan(false).WithLogCallback((level, message) =>
            {
                if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error)
                {
                    ModelLog.LlamaCppNative(logger, level.ToString(), message.TrimEnd());
                }
            });
            NativeApi.llama_empty_call(); // loads the library now, with the configuration above
        }
    }

    /// <summary>Frees the loaded models; a load still under way is waited for, one that failed has nothing to free.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var load in _loaded.Values.Where(l => l.IsValueCreated).Select(l => l.Value))
        {
            await ((Task)load).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (load.IsCompletedSuccessfully)
            {
                load.Result.Dispose();
            }
        }
        _loaded.Clear();
    }
}
