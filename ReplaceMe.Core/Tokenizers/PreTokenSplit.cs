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

    /// <summary>How long one regex match may run before the text is refused (a pathological pattern backtracks forever).</summary>
    public static readonly TimeSpan DefaultMatchTimeout = TimeSpan.FromSeconds(5);

    private readonly Regex _regex;
    private readonly bool _removeMatches;
    private readonly string _sourcePath;

    /// <summary>Compiles <paramref name="pattern"/>.</summary>
    /// <param name="pattern">The regex (tokenizer.json's <c>Regex</c> or an escaped <c>String</c>).</param>
    /// <param name="removeMatches">Drop the matches (<c>Removed</c>) rather than keep them as pieces (<c>Isolated</c>).</param>
    /// <param name="sourcePath">The tokenizer file, named in errors.</param>
    /// <param name="matchTimeout">Longest time one match may take; <see cref="DefaultMatchTimeout"/> when null.</param>
    /// <exception cref="UnsupportedModelException">The pattern is not valid .NET regex syntax.</exception>
    public PreTokenSplit(string pattern, bool removeMatches, string sourcePath = "tokenizer.json", TimeSpan? matchTimeout = null)
    {
        // The patterns in tokenizer.json files (Oniguruma/fancy-regex syntax) use only constructs .NET shares:
        // \p{L}, \p{N}, (?i:...), (?!\S), possessive-free quantifiers.
        try
        {
            _regex = new Regex(pattern, RegexOptions.CultureInvariant, matchTimeout ?? DefaultMatchTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new UnsupportedModelException($"{sourcePath}: pre-tokenizer pattern '{pattern}' is not a regex this library can run ({ex.Message}).", ex);
        }
        _removeMatches = removeMatches;
        _sourcePath = sourcePath;
    }

    /// <summary>Appends the non-empty pieces of <paramref name="text"/> to <paramref name="into"/>.</summary>
    /// <exception cref="CheckpointFormatException">The pattern ran past its time limit (catastrophic backtracking); the message names the file and the pattern.</exception>
    public void Split(string text, List<string> into)
    {
        int last = 0;
        try
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0) continue;
                if (m.Index > last) into.Add(text[last..m.Index]);
                if (!_removeMatches) into.Add(m.Value);
                last = m.Index + m.Length;
            }
        }
        catch (RegexMatchTimeoutException ex)
        {
            throw new CheckpointFormatException(
                $"{_sourcePath}: pre-tokenizer pattern '{_regex}' took longer than {ex.MatchTimeout.TotalSeconds:0.###} s on a {text.Length}-character piece (the regex backtracks catastrophically); fix the pattern.", ex);
        }
        if (last < text.Length) into.Add(text[last..]);
    }
}
