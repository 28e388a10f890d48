using static TorchSharp.torch;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>Batch encoding and decoding on any <see cref="ITextTokenizer"/>.</summary>
public static class TokenizerExtensions
{
    /// <summary>
    /// Encodes <paramref name="texts"/>, truncates each to its first <paramref name="maxLength"/> ids (a long text is
    /// tokenized only as far as those ids need, with the same result), and pads them into
    /// a <see cref="TokenBatch"/> (<c>[B, T]</c> ids and mask, T = longest row) with the tokenizer's pad id.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="texts">One text per row; each must produce at least one id.</param>
    /// <param name="maxLength">Longest row kept, in ids (special tokens included).</param>
    /// <param name="side">Where padding goes (left for generation).</param>
    /// <param name="addSpecialTokens">Add BOS/EOS as the tokenizer config says.</param>
    /// <param name="device">Where the tensors live (CPU when null).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is not positive.</exception>
    /// <exception cref="ArgumentException">No texts, or a text that encodes to no ids.</exception>
    public static TokenBatch EncodeBatch(this ITextTokenizer tokenizer, IReadOnlyList<string> texts, int maxLength,
        PaddingSide side = PaddingSide.Right, bool addSpecialTokens = true, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        Runtime.TorchRuntime.EnsureLoaded();
        var sequences = new List<IReadOnlyList<int>>(texts.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = tokenizer.EncodeTruncated(texts[i], maxLength, addSpecialTokens);
            if (ids.Count == 0) throw new ArgumentException($"Text {i} encodes to no tokens.", nameof(texts));
            sequences.Add(ids);
        }
        return TokenBatch.FromSequences(sequences, tokenizer.PadId, side, device);
    }

    /// <summary>Decodes each row of a <c>[B, T]</c> id tensor, using only positions whose mask is 1 when a mask is given.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="ids">Token ids <c>[B, T]</c>, integer.</param>
    /// <param name="attentionMask">Optional <c>[B, T]</c> mask (1 = real token).</param>
    /// <param name="skipSpecialTokens">Drop special tokens from the text.</param>
    /// <exception cref="ArgumentException">The tensor is not 2-D or the mask's shape differs.</exception>
    public static IReadOnlyList<string> DecodeBatch(this ITextTokenizer tokenizer, Tensor ids, Tensor? attentionMask = null, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.dim() != 2) throw new ArgumentException($"Expected ids of shape [B, T], got [{string.Join(", ", ids.shape)}].", nameof(ids));
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(ids.shape))
            throw new ArgumentException("The attention mask must have the same shape as the ids.", nameof(attentionMask));
        long rows = ids.shape[0], cols = ids.shape[1];
        using var scope = NewDisposeScope();
        var flat = ids.to(CPU).to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        var mask = attentionMask?.to(CPU).to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        var texts = new string[rows];
        for (long b = 0; b < rows; b++)
        {
            var row = new List<int>((int)cols);
            for (long t = 0; t < cols; t++)
                if (mask is null || mask[b * cols + t] != 0) row.Add((int)flat[b * cols + t]);
            texts[b] = tokenizer.Decode(row, skipSpecialTokens);
        }
        return texts;
    }
}
