using System.Text;
using System.Text.RegularExpressions;

namespace Agentry.Knowledge;

/// <summary>A chunk as the chunk step makes it, before it has an id or a vector.</summary>
public sealed record ChunkDraft(int Position, string Text, string? HeadingPath, int? Page, int Tokens);

/// <summary>
/// Cuts extracted text into chunks of at most a number of tokens, counted by the embedding model's own tokenizer, so no
/// chunk is truncated by the model. It prefers the strongest boundary that fits: a heading always starts a new chunk
/// (and the chunk records the headings above it); within a section, whole paragraphs are kept together; a paragraph
/// too long for one chunk is cut between sentences, and only a sentence too long for a chunk is cut between words.
/// A PDF page starts a chunk too. A chunk cut for size repeats up to <c>overlap</c> tokens of whole sentences from the end of the one before.
/// </summary>
internal sealed partial class Chunker(Func<string, int> countTokens, int maxTokens, int overlap)
{
    private readonly List<ChunkDraft> _chunks = [];
    private readonly List<Unit> _current = [];
    private readonly List<(int Level, string Title)> _headings = [];
    private string? _currentPath;
    private int _currentTokens;

    public static IReadOnlyList<ChunkDraft> Split(IReadOnlyList<ExtractedSection> sections, Func<string, int> countTokens, int maxTokens, int overlap)
    {
        var chunker = new Chunker(countTokens, maxTokens, overlap);
        foreach (var section in sections)
        {
            chunker.AddSection(section);
        }
        chunker.Flush(carry: false);
        return chunker._chunks;
    }

    private void AddSection(ExtractedSection section)
    {
        if (section.Page is not null)
        {
            // A page starts a chunk, so every chunk's page is the page its text is on.
            Flush(carry: false);
        }
        var paragraph = new StringBuilder();
        foreach (var raw in section.Text.Replace("\r\n", "\n").Split('\n'))
        {
            var line = raw.TrimEnd();
            var heading = HeadingLine().Match(line);
            if (heading.Success || line.Trim().Length == 0)
            {
                AddParagraph(paragraph.ToString(), section.Page);
                paragraph.Clear();
            }
            if (heading.Success)
            {
                AddHeading(heading.Groups[1].Value.Length, heading.Groups[2].Value.Trim(), section.Page);
            }
            else if (line.Trim().Length > 0)
            {
                paragraph.Append(paragraph.Length == 0 ? "" : "\n").Append(line);
            }
        }
        AddParagraph(paragraph.ToString(), section.Page);
    }

    private void AddHeading(int level, string title, int? page)
    {
        Flush(carry: false);
        _headings.RemoveAll(h => h.Level >= level);
        _headings.Add((level, title));
        // The heading's own line opens its chunk: its words describe what follows.
        AddUnit(new Unit($"{new string('#', level)} {title}", countTokens(title) + 1, page, "\n\n"));
    }

    private void AddParagraph(string text, int? page)
    {
        text = text.Trim();
        if (text.Length == 0)
        {
            return;
        }
        var tokens = countTokens(text);
        if (tokens <= maxTokens)
        {
            AddUnit(new Unit(text, tokens, page, "\n\n"));
            return;
        }
        foreach (var sentence in Sentences(text))
        {
            var sentenceTokens = countTokens(sentence);
            if (sentenceTokens <= maxTokens)
            {
                AddUnit(new Unit(sentence, sentenceTokens, page, " "));
                continue;
            }
            foreach (var piece in Words(sentence))
            {
                AddUnit(piece with { Page = page });
            }
        }
    }

    private void AddUnit(Unit unit)
    {
        if (_currentTokens + unit.Tokens > maxTokens)
        {
            Flush(carry: true);
            if (_currentTokens + unit.Tokens > maxTokens)
            {
                // The overlap and the unit together do not fit: the unit starts a chunk without overlap.
                _current.Clear();
                _currentTokens = 0;
            }
        }
        if (_current.Count == 0)
        {
            _currentPath = _headings.Count == 0 ? null : string.Join(" > ", _headings.Select(h => h.Title));
        }
        _current.Add(unit);
        _currentTokens += unit.Tokens;
    }

    /// <summary>Ends the current chunk; with <paramref name="carry"/>, the next one starts with its last sentences (the overlap).</summary>
    private void Flush(bool carry)
    {
        if (_current.Count == 0 || _current.All(u => u.Overlap))
        {
            _current.Clear();
            _currentTokens = 0;
            return;
        }
        var text = new StringBuilder(_current[0].Text);
        for (var i = 1; i < _current.Count; i++)
        {
            text.Append(_current[i].Separator).Append(_current[i].Text);
        }
        var chunk = text.ToString();
        _chunks.Add(new ChunkDraft(_chunks.Count, chunk, _currentPath, _current.FirstOrDefault(u => u.Page is not null)?.Page, countTokens(chunk)));
        var tail = carry && overlap > 0 ? Tail(_current) : [];
        _current.Clear();
        _current.AddRange(tail);
        _currentTokens = tail.Sum(u => u.Tokens);
    }

    /// <summary>Whole sentences from the end of the chunk, as many as fit in the overlap.</summary>
    private List<Unit> Tail(List<Unit> units)
    {
        var tail = new List<Unit>();
        var tokens = 0;
        for (var i = units.Count - 1; i >= 0; i--)
        {
            var sentences = Sentences(units[i].Text).ToList();
            for (var j = sentences.Count - 1; j >= 0; j--)
            {
                var count = countTokens(sentences[j]);
                if (tokens + count > overlap)
                {
                    return tail;
                }
                tokens += count;
                tail.Insert(0, new Unit(sentences[j], count, units[i].Page, " ", Overlap: true));
            }
        }
        return tail;
    }

    private static IEnumerable<string> Sentences(string text) =>
        SentenceEnd().Split(text).Select(s => s.Trim()).Where(s => s.Length > 0);

    /// <summary>A sentence longer than a chunk, cut between words into pieces that fit.</summary>
    private IEnumerable<Unit> Words(string sentence)
    {
        var piece = new StringBuilder();
        var tokens = 0;
        foreach (var word in sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var count = countTokens(word);
            if (tokens + count > maxTokens && piece.Length > 0)
            {
                yield return new Unit(piece.ToString(), tokens, null, " ");
                piece.Clear();
                tokens = 0;
            }
            // A single "word" longer than a chunk (a URL, a hash run together) is cut by characters.
            var rest = word;
            while (count > maxTokens)
            {
                var cut = Math.Max(1, rest.Length * maxTokens / count);
                yield return new Unit(rest[..cut], countTokens(rest[..cut]), null, " ");
                rest = rest[cut..];
                count = countTokens(rest);
            }
            piece.Append(piece.Length == 0 ? "" : " ").Append(rest);
            tokens += count;
        }
        if (piece.Length > 0)
        {
            yield return new Unit(piece.ToString(), tokens, null, " ");
        }
    }

    private sealed record Unit(string Text, int Tokens, int? Page, string Separator, bool Overlap = false);

    [GeneratedRegex(@"^(#{1,6})\s+(.+)$")]
    private static partial Regex HeadingLine();

    [GeneratedRegex(@"(?<=[.!?…])\s+|\n+")]
    private static partial Regex SentenceEnd();
}
