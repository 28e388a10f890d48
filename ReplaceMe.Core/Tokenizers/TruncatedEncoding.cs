namespace ReplaceMe.Core.Tokenizers;

/// <summary>
/// The first <c>maxLength</c> ids of a text without tokenizing all of it: a 50 MB calibration line that keeps 64 tokens
/// costs the tokenization of a few thousand characters instead of the whole line.
/// </summary>
/// <remarks>
/// Tokenization is local: cutting a text changes only the ids near the cut (the last pre-token, a half added token, a
/// BPE merge across the cut). So growing prefixes are encoded, each twice as long as the one before, until two
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
            int cut = (int)length;
            if (char.IsHighSurrogate(text[cut - 1])) cut--; // never split a surrogate pair
            var ids = tokenizer.Encode(text[..cut], addSpecialTokens);
            if (ids.Count < maxLength + Margin) continue;
            var head = Truncate(ids, maxLength);
            if (previous is not null && head.SequenceEqual(previous)) return head;
            previous = head;
        }
        return Truncate(tokenizer.Encode(text, addSpecialTokens), maxLength);
    }

    private static int[] Truncate(IReadOnlyList<int> ids, int maxLength)
    {
        var result = new int[Math.Min(ids.Count, maxLength)];
        for (int i = 0; i < result.Length; i++) result[i] = ids[i];
        return result;
    }
}
