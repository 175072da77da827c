using System.Buffers.Text;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Agentry.Hosting;
using Microsoft.Extensions.Validation;
using Microsoft.EntityFrameworkCore;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Agentry.Data;

/// <summary>One page of a list and the cursor that continues it (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

/// <summary>
/// The query string of every list endpoint: <c>limit</c>, <c>cursor</c>, <c>sort</c>. Checked by <see cref="Resolve"/>
/// (the <c>[Range]</c> is for the API description): left to the validation filter, a list endpoint's every
/// request would pay for it.
/// </summary>
#pragma warning disable ASP0029 // SkipValidation is marked experimental in .NET 10; the generator honours it
[SkipValidation]
#pragma warning restore ASP0029
public sealed class PageRequest
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    [Range(1, MaxLimit)]
    public int? Limit { get; init; }

    public string? Cursor { get; init; }

    public string? Sort { get; init; }

    public int Size => Limit ?? DefaultLimit;

    /// <summary>
    /// Checks <see cref="Limit"/>, <see cref="Sort"/> against the endpoint's allow-list (first entry is the default) and decodes
    /// <see cref="Cursor"/>; a 400 problem when either is wrong.
    /// </summary>
    public ProblemHttpResult? Resolve(string[] sorts, out string sort, out Cursor? after)
    {
        sort = Sort ?? sorts[0];
        after = null;
        if (Limit is < 1 or > MaxLimit)
        {
            return Problem.Validation("limit", $"The field Limit must be between 1 and {MaxLimit}.");
        }
        if (!sorts.Contains(sort))
        {
            return Problem.Validation("sort", $"Unknown sort '{sort}'. Allowed: {string.Join(", ", sorts)}.");
        }
        return Cursor is not null && !Data.Cursor.TryDecode(Cursor, sort, out after)
            ? Problem.BadRequest(ProblemCodes.InvalidCursor, "The cursor is malformed or belongs to another sort order.")
            : null;
    }
}

/// <summary>A row listed by creation, i.e. by its UUIDv7 id: what <see cref="Paging.OrderByCreation{T}"/> sorts on.</summary>
public interface ICreatedRow
{
    Guid Id { get; }
}

/// <summary>A row listed by creation or by name: what <see cref="Paging.OrderForPage{T}"/> sorts on.</summary>
public interface INamedRow : ICreatedRow
{
    string Name { get; }
}

public static class Paging
{
    /// <summary>The sorts <see cref="OrderForPage{T}"/> understands; the first is the default.</summary>
    public static readonly string[] NamedRowSorts = ["-createdAt", "createdAt", "name", "-name"];

    /// <summary>The sorts <see cref="OrderByCreation{T}"/> understands; the first (newest first) is the default.</summary>
    public static readonly string[] CreationSorts = ["-createdAt", "createdAt"];

    /// <summary>
    /// Orders by creation, newest first unless <paramref name="sort"/> is <c>createdAt</c>, starting after the cursor's row.
    /// Ids are UUIDv7, so id order is creation order and the keyset never skips or repeats a row while rows arrive.
    /// </summary>
    public static IQueryable<T> OrderByCreation<T>(this IQueryable<T> query, string sort, Cursor? after) where T : class, ICreatedRow =>
        (sort, after) switch
        {
            ("createdAt", null) => query.OrderBy(r => r.Id),
            ("createdAt", { } c) => query.Where(r => r.Id.CompareTo(c.Id) > 0).OrderBy(r => r.Id),
            (_, null) => query.OrderByDescending(r => r.Id),
            (_, { } c) => query.Where(r => r.Id.CompareTo(c.Id) < 0).OrderByDescending(r => r.Id),
        };

    /// <summary>One page of rows in a <see cref="CreationSorts"/> order, mapped.</summary>
    public static async Task<Page<TItem>> CreationPageAsync<T, TItem>(
        this IQueryable<T> query, string sort, Cursor? after, int size, Func<T, TItem> map, CancellationToken ct) where T : class, ICreatedRow
    {
        var rows = await query.OrderByCreation(sort, after).Take(size + 1).ToListAsync(ct);
        return rows.ToPage(size, last => new Cursor(sort, null, last.Id), map);
    }

    /// <summary>
    /// Orders by one of <see cref="NamedRowSorts"/> and starts after the cursor's row. Ids are UUIDv7, so id
    /// order is creation order; name ties break on id.
    /// </summary>
    public static IQueryable<T> OrderForPage<T>(this IQueryable<T> query, string sort, Cursor? after) where T : class, INamedRow =>
        (sort, after) switch
        {
            ("-createdAt" or "createdAt", _) => query.OrderByCreation(sort, after),
            ("name", null) => query.OrderBy(r => r.Name).ThenBy(r => r.Id),
            ("name", { } c) => query
                .Where(r => r.Name.CompareTo(c.Value) > 0 || (r.Name == c.Value && r.Id.CompareTo(c.Id) > 0))
                .OrderBy(r => r.Name).ThenBy(r => r.Id),
            (_, null) => query.OrderByDescending(r => r.Name).ThenByDescending(r => r.Id),
            (_, { } c) => query
                .Where(r => r.Name.CompareTo(c.Value) < 0 || (r.Name == c.Value && r.Id.CompareTo(c.Id) < 0))
                .OrderByDescending(r => r.Name).ThenByDescending(r => r.Id),
        };

    /// <summary>One page of <typeparamref name="T"/> rows in a <see cref="NamedRowSorts"/> order, mapped.</summary>
    public static async Task<Page<TItem>> NamedRowPageAsync<T, TItem>(
        this IQueryable<T> query, string sort, Cursor? after, int size, Func<T, TItem> map, CancellationToken ct) where T : class, INamedRow
    {
        var rows = await query.OrderForPage(sort, after).Take(size + 1).ToListAsync(ct);
        var byName = sort.EndsWith("name", StringComparison.Ordinal);
        return rows.ToPage(size, last => new Cursor(sort, byName ? last.Name : null, last.Id), map);
    }

    /// <summary>
    /// Turns up to <c>size + 1</c> rows (the query asks for one more than it returns) into a page whose
    /// cursor points after its last row, or no cursor when nothing follows.
    /// </summary>
    public static Page<TItem> ToPage<TRow, TItem>(this List<TRow> rows, int size, Func<TRow, Cursor> cursorOf, Func<TRow, TItem> map)
    {
        string? next = null;
        if (rows.Count > size)
        {
            rows.RemoveAt(size);
            next = cursorOf(rows[^1]).Encode();
        }
        return new Page<TItem>(rows.Select(map).ToList(), next);
    }
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
