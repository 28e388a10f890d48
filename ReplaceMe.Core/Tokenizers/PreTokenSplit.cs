using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>
/// One pre-tokenization step of a <c>tokenizer.json</c>: split text at a regex's matches, keeping each match as its own
/// piece (<c>Isolated</c>, what byte-level BPE models use) or dropping it (<c>Removed</c>).
/// </summary>
internal sealed class PreTokenSplit
{
    /// <summary>GPT-2's pre-tokenization regex (used by the ByteLevel pre-tokenizer when <c>use_regex</c> is true).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly Regex _regex;
    private readonly bool _removeMatches;

    public PreTokenSplit(string pattern, bool removeMatches)
    {
        // The patterns in tokenizer.json files (Oniguruma/fancy-regex syntax) use only constructs .NET shares:
        // \p{L}, \p{N}, (?i:...), (?!\S), possessive-free quantifiers.
        _regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
        _removeMatches = removeMatches;
    }

    /// <summary>Appends the non-empty pieces of <paramref name="text"/> to <paramref name="into"/>.</summary>
    public void Split(string text, List<string> into)
    {
        int last = 0;
        for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            if (m.Index > last) into.Add(text[last..m.Index]);
            if (!_removeMatches) into.Add(m.Value);
            last = m.Index + m.Length;
        }
        if (last < text.Length) into.Add(text[last..]);
    }
}
