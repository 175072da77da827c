using System.Text;

namespace Agentry.Models;

/// <summary>
/// Tokens of a text when the model's own tokenizer is not at hand: UTF-8 bytes / 3, rounded up. It over-counts English
/// (about 4 characters a token), which is the safe side both for fitting a window and for spending a budget.
/// </summary>
internal static class TokenEstimate
{
    /// <summary>Role markers around each message (ChatML's are 5 tokens, plain <c>User:</c> turns 3).</summary>
    public const int MessageOverhead = 8;

    public static int Of(string text) => BytesToTokens(Encoding.UTF8.GetByteCount(text));

    public static int BytesToTokens(long bytes) => (int)((bytes + 2) / 3);
}
