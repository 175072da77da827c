using System.ComponentModel.DataAnnotations;

namespace Agentry.Chat;

/// <summary>Conversations and their replies. Section <c>Agentry:Chat</c>.</summary>
public sealed class ConversationOptions
{
    public const string SectionName = "Agentry:Chat";

    /// <summary>The longest message a user may send, in characters.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Agentry:Chat:MaxMessageLength must be between 1 and 1000000.")]
    public int MaxMessageLength { get; set; } = 32_000;

    /// <summary>The most tokens one reply may have; the history sent with it is trimmed to leave this much room (at most half the window).</summary>
    [Range(16, 1_000_000, ErrorMessage = "Agentry:Chat:MaxReplyTokens must be between 16 and 1000000.")]
    public int MaxReplyTokens { get; set; } = 1_024;

    /// <summary>The window assumed for a model whose server does not say its context length.</summary>
    [Range(256, 10_000_000, ErrorMessage = "Agentry:Chat:DefaultContextLength must be between 256 and 10000000.")]
    public int DefaultContextLength { get; set; } = 4_096;

    /// <summary>How long one reply may take, from the request to its last token; then it is stored as failed (<c>timeout</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:Chat:GenerationTimeout must be between 00:00:01 and 01:00:00.")]
    public TimeSpan GenerationTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Reply deltas are written to the event log in batches: at least this often while tokens arrive…</summary>
    [Range(typeof(TimeSpan), "00:00:00.005", "00:00:05", ErrorMessage = "Agentry:Chat:FlushInterval must be between 00:00:00.005 and 00:00:05.")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// …and at once when this many deltas wait. A bound on a batch, not a rhythm: each batch is a transaction (an fsync),
    /// and a local model at thousands of tokens a second would otherwise commit many times per interval.
    /// </summary>
    [Range(1, 10_000, ErrorMessage = "Agentry:Chat:FlushTokens must be between 1 and 10000.")]
    public int FlushTokens { get; set; } = 256;

    /// <summary>
    /// How long a generating reply is held by its node without renewal; the node renews it as it writes. A reply whose
    /// lease lapsed (its node died) is marked failed by any node's sweeper.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Agentry:Chat:ReplyLease must be between 00:00:01 and 00:10:00.")]
    public TimeSpan ReplyLease { get; set; } = TimeSpan.FromSeconds(30);
}
