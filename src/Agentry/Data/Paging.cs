using System.Buffers.Text;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;

namespace Agentry.Data;

/// <summary>One page of a list and the cursor that continues it (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

/// <summary>The query string of every list endpoint: <c>limit</c>, <c>cursor</c>, <c>sort</c>.</summary>
public sealed class PageRequest
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    [Range(1, MaxLimit)]
    public int? Limit { get; init; }

    public string? Cursor { get; init; }

    public string? Sort { get; init; }

    public int Size => Limit ?? DefaultLimit;
}

/// <summary>
/// An opaque keyset position: the sort it belongs to, the last row's sort value and its id.
/// Keyset (not offset) paging stays fast at any depth and never skips or repeats a row under writes.
/// </summary>
public sealed record Cursor(string Sort, string? Value, Guid Id)
{
    public string Encode() => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(this, JsonSerializerOptions.Web));

    public static bool TryDecode(string text, string sort, out Cursor? cursor)
    {
        cursor = null;
        try
        {
            cursor = JsonSerializer.Deserialize<Cursor>(Base64Url.DecodeFromChars(text), JsonSerializerOptions.Web);
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return false;
        }
        return cursor is not null && cursor.Sort == sort;
    }
}
