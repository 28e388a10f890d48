namespace ReplaceMe.Core.Tokenizers;

/// <summary>
/// The first <c>maxLength</c> ids of a text without tokenizing all of it: a 50 MB calibration line that keeps 64 tokens
/// costs the tokenization of a few thousand characters instead of the whole line.
/// </summary>
/// <remarks>
/// Tokenization is local: cutting a text at a word boundary (a space after a non-space character) changes only the ids
/// near the cut (the last pre-token, a half added token). Cutting inside a run of one character is not local (BPE of a
/// run of n "a"s or spaces depends on n), so cuts are only made at such boundaries, and a text without one is encoded
/// whole. Growing prefixes are encoded, each at least twice as long as the one before, until two
/// successive prefixes both yield at least <c>maxLength + </c><see cref="Margin"/> ids and agree on the first
/// <c>maxLength</c> of them. A text short enough (up to <see cref="WholeTextChars"/> characters, or a few times what
/// <c>maxLength</c> ids need) is simply encoded whole. The result equals <c>Encode(text).Take(maxLength)</c>; tests check
/// that for SentencePiece and byte-level BPE on real text.
/// </remarks>
internal static class TruncatedEncoding
{
    /// <summary>Texts up to this many characters are encoded whole.</summary>
    public const int WholeTextChars = 16_384;

    /// <summary>Ids a prefix must yield beyond <c>maxLength</c> before its head is trusted (covers the ids a cut disturbs and a suffix such as EOS).</summary>
    public const int Margin = 32;

    /// <summary>Characters first tried per id kept (natural text averages 3–5 characters per BPE token).</summary>
    private const int CharsPerId = 8;

    /// <summary>Exactly <c>tokenizer.Encode(text, addSpecialTokens)</c> truncated to its first <paramref name="maxLength"/> ids.</summary>
    public static IReadOnlyList<int> EncodeTruncated(this ITextTokenizer tokenizer, string text, int maxLength, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        long first = Math.Max(WholeTextChars / 4, (long)CharsPerId * (maxLength + Margin));
        if (text.Length <= Math.Max(WholeTextChars, 4 * first)) return Truncate(tokenizer.Encode(text, addSpecialTokens), maxLength);
        int[]? previous = null;
        for (long length = first; length < text.Length; length *= 2)
        {
            int cut = WordBoundaryAtOrAfter(text, (int)length);
            if (cut < 0) break; // one endless word: only the whole text gives its ids
            var ids = tokenizer.Encode(text[..cut], addSpecialTokens);
            length = cut;
            if (ids.Count < maxLength + Margin) continue;
            var head = Truncate(ids, maxLength);
            if (previous is not null && head.SequenceEqual(previous)) return head;
            previous = head;
        }
        return Truncate(tokenizer.Encode(text, addSpecialTokens), maxLength);
    }

    /// <summary>
    /// The first position at or after <paramref name="from"/> where a space follows a character that is not whitespace
    /// (-1 when there is none). Pre-tokenizers end a piece there (GPT-2 style regexes attach the space to the next word;
    /// SentencePiece starts a new word at "▁"), and a run of one character (whose BPE can depend on its length) is never
    /// cut.
    /// </summary>
    private static int WordBoundaryAtOrAfter(string text, int from)
    {
        for (int i = Math.Max(from, 1); i < text.Length; i++)
            if (text[i] == ' ' && !char.IsWhiteSpace(text[i - 1])) return i;
        return -1;
    }

    private static int[] Truncate(IReadOnlyList<int> ids, int maxLength)
    {
        var result = new int[Math.Min(ids.Count, maxLength)];
        for (int i = 0; i < result.Length; i++) result[i] = ids[i];
        return result;
    }
}
