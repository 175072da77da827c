using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Agentry.Models;

/// <summary>
/// The configured embedding model: its id (<c>{provider}/{model}</c>), its generator (with the Microsoft.Extensions.AI
/// OpenTelemetry middleware, like chat models), the length of its vectors (known for MiniLM or when configured,
/// otherwise learned from the first answer), and for MiniLM a token counter that uses the model's own tokenizer.
/// </summary>
internal sealed class EmbeddingModels : IDisposable
{
    private int _dimensions;

    public EmbeddingModels(IOptions<EmbeddingOptions> options, IEmbeddingGenerator<string, Embedding<float>> inner, ILoggerFactory loggers)
    {
        var settings = options.Value;
        Provider = settings.Provider;
        Name = settings.ModelName;
        Id = ModelIds.Of(Provider, Name);
        Tokens = inner.GetService<ITokenCounter>();
        _dimensions = inner.GetService<EmbeddingGeneratorMetadata>()?.DefaultModelDimensions ?? settings.Dimensions ?? 0;
        Generator = new EmbeddingGeneratorBuilder<string, Embedding<float>>(inner)
            .UseOpenTelemetry(loggers, ModelCatalog.TelemetrySource)
            .Build();
    }

    public string Id { get; }

    public string Provider { get; }

    public string Name { get; }

    /// <summary>The generator, telemetry included.</summary>
    public IEmbeddingGenerator<string, Embedding<float>> Generator { get; }

    /// <summary>The model's own tokenizer, where the model runs in-process (MiniLM); null for models behind a server.</summary>
    public ITokenCounter? Tokens { get; }

    /// <summary>The length of the model's vectors; null until a remote model without configured dimensions first answered.</summary>
    public int? Dimensions => Volatile.Read(ref _dimensions) is > 0 and var known ? known : null;

    /// <summary>The model as <c>/api/v1/models</c> lists it.</summary>
    public ModelResponse Describe() => new(
        Id, Provider, Name, Tokens is null ? null : MiniLmEmbeddingGenerator.MaxSequenceTokens, false, ModelTypes.Embedding, Dimensions);

    /// <summary>One vector per input, in order; the first answer of a model whose length was not known tells it.</summary>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IReadOnlyList<string> inputs, CancellationToken ct)
    {
        var embeddings = await Generator.GenerateAsync(inputs, cancellationToken: ct);
        if (embeddings.Count != inputs.Count)
        {
            throw new InvalidOperationException(
                $"Embedding model '{Id}' gave {embeddings.Count} vectors for {inputs.Count} inputs.");
        }
        if (embeddings.Count > 0)
        {
            Interlocked.CompareExchange(ref _dimensions, embeddings[0].Vector.Length, 0);
        }
        return embeddings;
    }

    public void Dispose() => Generator.Dispose();
}
