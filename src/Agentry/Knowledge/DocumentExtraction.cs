using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using UglyToad.PdfPig;
using UglyToad.PdfPig.DocumentLayoutAnalysis.TextExtractor;

namespace Agentry.Knowledge;

public static class DocumentFormats
{
    public const string Text = "text";
    public const string Markdown = "markdown";
    public const string Html = "html";
    public const string Pdf = "pdf";
    public const string Json = "json";
    public const string Csv = "csv";

    public static readonly string[] All = [Text, Markdown, Html, Pdf, Json, Csv];

    /// <summary>The format a content type or, failing that, a file name's extension says; null when neither names a supported one.</summary>
    public static string? Detect(string? contentType, string? fileName)
    {
        var media = contentType?.Split(';')[0].Trim().ToLowerInvariant();
        var byType = media switch
        {
            "text/plain" => Text,
            "text/markdown" or "text/x-markdown" => Markdown,
            "text/html" or "application/xhtml+xml" => Html,
            "application/pdf" => Pdf,
            "application/json" => Json,
            "text/csv" => Csv,
            _ => null,
        };
        var byName = Path.GetExtension(fileName ?? "").ToLowerInvariant() switch
        {
            ".txt" or ".text" => Text,
            ".md" or ".markdown" => Markdown,
            ".html" or ".htm" => Html,
            ".pdf" => Pdf,
            ".json" => Json,
            ".csv" => Csv,
            _ => null,
        };
        // A specific type wins; a generic one (octet-stream, text/plain from a browser) defers to the extension.
        return byType is not null && byType != Text ? byType : byName ?? byType;
    }
}

/// <summary>Part of a document's text; PDF pages are sections of their own, so chunks keep their page.</summary>
public sealed record ExtractedSection(int? Page, string Text);

/// <summary>
/// The extract step: a document's bytes to plain text in sections. Headings are kept as Markdown headings (<c># …</c>),
/// which the chunker reads as boundaries and heading paths, whatever the format was.
/// </summary>
internal static partial class DocumentExtraction
{
    public static IReadOnlyList<ExtractedSection> Extract(string format, byte[] content) => format switch
    {
        DocumentFormats.Pdf => Pdf(content),
        DocumentFormats.Html => [new(null, Html(Decode(content)))],
        DocumentFormats.Json => [new(null, Json(Decode(content)))],
        DocumentFormats.Csv => [new(null, Csv(Decode(content)))],
        _ => [new(null, Decode(content).Replace("\r\n", "\n"))],
    };

    private static string Decode(byte[] content)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(content).TrimStart('\uFEFF');
        }
        catch (DecoderFallbackException)
        {
            throw new DocumentFormatException("The document is not valid UTF-8 text.");
        }
    }

    private static List<ExtractedSection> Pdf(byte[] content)
    {
        try
        {
            using var pdf = PdfDocument.Open(content);
            return pdf.GetPages().Select(p => new ExtractedSection(p.Number, ContentOrderTextExtractor.GetText(p)))
                .Where(s => !string.IsNullOrWhiteSpace(s.Text)).ToList();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new DocumentFormatException($"The PDF could not be read: {ex.Message}");
        }
    }

    /// <summary>Text without scripts, styles and markup; headings become Markdown headings, blocks become paragraphs.</summary>
    private static string Html(string html)
    {
        var text = Invisible().Replace(html, " ");
        text = Heading().Replace(text, m => $"\n\n{new string('#', m.Groups[1].Value[0] - '0')} {Tag().Replace(m.Groups[2].Value, " ").Trim()}\n\n");
        text = Block().Replace(text, "\n\n");
        text = Tag().Replace(text, " ");
        text = WebUtility.HtmlDecode(text);
        var lines = text.Split('\n').Select(l => Spaces().Replace(l, " ").Trim());
        return BlankLines().Replace(string.Join('\n', lines), "\n\n").Trim();
    }

    /// <summary>One line per value, named by its path (<c>a.b[2].c: value</c>), so keys are searchable with their values.</summary>
    private static string Json(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new DocumentFormatException($"The document is not valid JSON: {ex.Message}");
        }
        using (document)
        {
            var text = new StringBuilder();
            Flatten(document.RootElement, "", text);
            return text.ToString();
        }
    }

    private static void Flatten(JsonElement element, string path, StringBuilder text)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Flatten(property.Value, path.Length == 0 ? property.Name : $"{path}.{property.Name}", text);
                }
                // A blank line after each object of an array keeps its values together as a paragraph.
                if (path.EndsWith(']'))
                {
                    text.Append('\n');
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Flatten(item, $"{path}[{i++}]", text);
                }
                break;
            default:
                text.Append(path.Length == 0 ? "" : path + ": ").Append(element.ValueKind == JsonValueKind.String ? element.GetString() : element.GetRawText()).Append('\n');
                break;
        }
    }

    /// <summary>A paragraph per row, each value named by its column: <c>name: Ada; born: 1815</c>.</summary>
    private static string Csv(string csv)
    {
        var rows = CsvRows(csv).Where(r => r.Any(v => v.Length > 0)).ToList();
        if (rows.Count == 0)
        {
            return "";
        }
        var header = rows[0];
        return string.Join("\n\n", rows.Skip(1).Select(row => string.Join("; ", row.Select((value, i) =>
            $"{(i < header.Count ? header[i] : "column" + (i + 1).ToString(CultureInfo.InvariantCulture))}: {value}"))));
    }

    /// <summary>RFC 4180: commas, quoted fields with doubled quotes, line breaks inside quotes.</summary>
    private static IEnumerable<List<string>> CsvRows(string csv)
    {
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < csv.Length; i++)
        {
            var c = csv[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < csv.Length && csv[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    row.Add(field.ToString().Trim());
                    field.Clear();
                    break;
                case '\n':
                    row.Add(field.ToString().Trim());
                    field.Clear();
                    yield return row;
                    row = [];
                    break;
                case '\r':
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        if (quoted)
        {
            throw new DocumentFormatException("The CSV ends inside a quoted field.");
        }
        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString().Trim());
            yield return row;
        }
    }

    [GeneratedRegex(@"<(script|style|noscript|template|head)\b[^>]*>.*?</\1\s*>|<!--.*?-->", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex Invisible();

    [GeneratedRegex(@"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"</?(p|div|section|article|li|ul|ol|table|tr|br|blockquote|pre|header|footer|main|nav)\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex Block();

    [GeneratedRegex(@"<[^>]+>")]
    private static partial Regex Tag();

    [GeneratedRegex(@"[ \t\f\v\u00A0]+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\n{3,}")]
    private static partial Regex BlankLines();
}

/// <summary>The document's content is not what its format says; retrying cannot help.</summary>
internal sealed class DocumentFormatException(string message) : Exception(message);
