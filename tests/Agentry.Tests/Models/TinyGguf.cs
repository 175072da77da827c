using System.Text;

namespace Agentry.Tests.Models;

/// <summary>
/// Writes a tiny llama-architecture GGUF (v3) model with seeded random weights, so tests run real llama.cpp inference
/// without downloading anything: ~400 tokens (the SentencePiece specials, ChatML markers, all 256 byte tokens, and a
/// few English words with every prefix of each, so merges work), 64-wide embeddings, 4 heads, 2 layers, context 256.
/// The same seed gives the same bytes. Its text is word salad, but tokenizing, sampling and stopping are real.
/// Readable output: channel 0 of every embedding is 1 and no block writes to it, so after the final norm it carries a
/// large constant; channel 0 of each output row is a per-token bias (+6 for whole words, −30 for everything else).
/// </summary>
public static class TinyGguf
{
    public const int ContextLength = 256;
    private const int Embedding = 64, Heads = 4, Layers = 2, FeedForward = 128, Alignment = 32;

    public const string ChatMlTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>The whole words of the vocabulary: with the output bias, the only text the model writes.</summary>
    public static readonly string[] Words =
    [
        "the", "a", "agent", "task", "model", "token", "queue", "runs", "writes", "reads", "hello", "world", "quick", "brown",
        "fox", "jumps", "over", "lazy", "dog", "user", "assistant", "system", "local", "tiny", "answer", "question", "is", "and",
        "of", "to", "in", "it", "you", "that", "with", "for", "on", "as", "are", "this",
    ];

    private enum TokenType { Normal = 1, Unknown = 2, Control = 3, Byte = 6 }

    /// <summary>Writes the model to <paramref name="path"/>; <paramref name="chatTemplate"/> false leaves the template out.</summary>
    public static void Write(string path, int seed = 42, bool chatTemplate = true)
    {
        using var file = File.Create(path);
        file.Write(Build(seed, chatTemplate));
    }

    public static byte[] Build(int seed = 42, bool chatTemplate = true)
    {
        var (tokens, types, scores, bias) = Vocabulary();
        var random = new SplitMix64((ulong)seed);
        var headDim = Embedding / Heads;

        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        var embedding = random.Matrix(Embedding * tokens.Count, 0.05f);
        for (var t = 0; t < tokens.Count; t++)
        {
            embedding[t * Embedding] = 1f;
        }
        tensors.Add(("token_embd.weight", [Embedding, tokens.Count], embedding));
        tensors.Add(("output_norm.weight", [Embedding], Ones(Embedding)));
        var output = random.Matrix(Embedding * tokens.Count, 0.1f);
        for (var t = 0; t < tokens.Count; t++)
        {
            output[t * Embedding] = bias[t];
        }
        tensors.Add(("output.weight", [Embedding, tokens.Count], output));
        for (var layer = 0; layer < Layers; layer++)
        {
            var blk = $"blk.{layer}.";
            tensors.Add((blk + "attn_norm.weight", [Embedding], Ones(Embedding)));
            tensors.Add((blk + "attn_q.weight", [Embedding, Heads * headDim], random.Matrix(Embedding * Embedding, 0.1f)));
            tensors.Add((blk + "attn_k.weight", [Embedding, Heads * headDim], random.Matrix(Embedding * Embedding, 0.1f)));
            tensors.Add((blk + "attn_v.weight", [Embedding, Heads * headDim], random.Matrix(Embedding * Embedding, 0.1f)));
            // Output row 0 stays zero: no block writes to channel 0.
            tensors.Add((blk + "attn_output.weight", [Heads * headDim, Embedding], ZeroFirstRow(random.Matrix(Embedding * Embedding, 0.1f), Heads * headDim)));
            tensors.Add((blk + "ffn_norm.weight", [Embedding], Ones(Embedding)));
            tensors.Add((blk + "ffn_gate.weight", [Embedding, FeedForward], random.Matrix(Embedding * FeedForward, 0.1f)));
            tensors.Add((blk + "ffn_up.weight", [Embedding, FeedForward], random.Matrix(Embedding * FeedForward, 0.1f)));
            tensors.Add((blk + "ffn_down.weight", [FeedForward, Embedding], ZeroFirstRow(random.Matrix(FeedForward * Embedding, 0.1f), FeedForward)));
        }

        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var metadata = new List<Action>
        {
            () => String(w, "general.architecture", "llama"),
            () => String(w, "general.name", "tiny"),
            () => UInt32(w, "general.alignment", Alignment),
            () => UInt32(w, "general.file_type", 0),
            () => UInt32(w, "llama.context_length", ContextLength),
            () => UInt32(w, "llama.embedding_length", Embedding),
            () => UInt32(w, "llama.block_count", Layers),
            () => UInt32(w, "llama.feed_forward_length", FeedForward),
            () => UInt32(w, "llama.attention.head_count", Heads),
            () => UInt32(w, "llama.attention.head_count_kv", Heads),
            () => UInt32(w, "llama.rope.dimension_count", (uint)headDim),
            () => UInt32(w, "llama.vocab_size", (uint)tokens.Count),
            () => Float32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f),
            () => String(w, "tokenizer.ggml.model", "llama"),
            () => StringArray(w, "tokenizer.ggml.tokens", tokens),
            () => Float32Array(w, "tokenizer.ggml.scores", scores),
            () => Int32Array(w, "tokenizer.ggml.token_type", types.Select(t => (int)t).ToList()),
            () => UInt32(w, "tokenizer.ggml.unknown_token_id", 0),
            () => UInt32(w, "tokenizer.ggml.bos_token_id", 1),
            () => UInt32(w, "tokenizer.ggml.eos_token_id", 2),
        };
        if (chatTemplate)
        {
            metadata.Add(() => String(w, "tokenizer.chat_template", ChatMlTemplate));
        }
        w.Write((ulong)metadata.Count);
        metadata.ForEach(write => write());

        var offset = 0L;
        foreach (var (name, shape, data) in tensors)
        {
            Str(w, name);
            w.Write((uint)shape.Length);
            foreach (var dim in shape)
            {
                w.Write((ulong)dim);
            }
            w.Write(0u); // GGML_TYPE_F32
            w.Write((ulong)offset);
            offset += Aligned(data.Length * 4L);
        }
        Pad(w);
        foreach (var (_, _, data) in tensors)
        {
            foreach (var value in data)
            {
                w.Write(value);
            }
            Pad(w);
        }
        w.Flush();
        return stream.ToArray();
    }

    private static (List<string> Tokens, List<TokenType> Types, List<float> Scores, List<float> Bias) Vocabulary()
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>" };
        var types = new List<TokenType> { TokenType.Unknown, TokenType.Control, TokenType.Control, TokenType.Control, TokenType.Control };
        for (var b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(TokenType.Byte);
        }
        var fixedCount = tokens.Count;
        var whole = new HashSet<string>();
        foreach (var word in Words)
        {
            var piece = "\u2581" + word;
            whole.Add(piece);
            for (var length = 1; length <= piece.Length; length++)
            {
                if (!tokens.Contains(piece[..length]))
                {
                    tokens.Add(piece[..length]);
                    types.Add(TokenType.Normal);
                }
            }
        }
        // Longer pieces score higher, so SentencePiece merges into whole words.
        var scores = tokens.Select((t, i) => i < fixedCount ? 0f : t.Length).ToList();
        var bias = tokens.Select(t => whole.Contains(t) ? 6f : -30f).ToList();
        return (tokens, types, scores, bias);
    }

    private static float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();

    private static float[] ZeroFirstRow(float[] matrix, int rowLength)
    {
        Array.Clear(matrix, 0, rowLength);
        return matrix;
    }

    private static long Aligned(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        w.Flush();
        while (w.BaseStream.Position % Alignment != 0)
        {
            w.Write((byte)0);
        }
    }

    private static void Str(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    // GGUF metadata value types.
    private const uint U32 = 4, I32 = 5, F32 = 6, Text = 8, List = 9;

    private static void UInt32(BinaryWriter w, string key, uint value) { Str(w, key); w.Write(U32); w.Write(value); }

    private static void Float32(BinaryWriter w, string key, float value) { Str(w, key); w.Write(F32); w.Write(value); }

    private static void String(BinaryWriter w, string key, string value) { Str(w, key); w.Write(Text); Str(w, value); }

    private static void StringArray(BinaryWriter w, string key, List<string> values)
    {
        Str(w, key); w.Write(List); w.Write(Text); w.Write((ulong)values.Count);
        values.ForEach(v => Str(w, v));
    }

    private static void Float32Array(BinaryWriter w, string key, List<float> values)
    {
        Str(w, key); w.Write(List); w.Write(F32); w.Write((ulong)values.Count);
        values.ForEach(w.Write);
    }

    private static void Int32Array(BinaryWriter w, string key, List<int> values)
    {
        Str(w, key); w.Write(List); w.Write(I32); w.Write((ulong)values.Count);
        values.ForEach(w.Write);
    }

    /// <summary>SplitMix64: a fixed, tiny generator, so the weights never depend on the runtime's Random.</summary>
    private sealed class SplitMix64(ulong state)
    {
        public float[] Matrix(int n, float scale)
        {
            var values = new float[n];
            for (var i = 0; i < n; i++)
            {
                values[i] = (float)((Next() >> 11) * (1.0 / (1UL << 53)) * 2 - 1) * scale;
            }
            return values;
        }

        private ulong Next()
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
