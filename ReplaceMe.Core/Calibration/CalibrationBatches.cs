using System.Buffers.Binary;
using System.Security.Cryptography;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Calibration;

/// <summary>Turns calibration documents into padded <see cref="TokenBatch"/>es and fingerprints them.</summary>
public static class CalibrationBatches
{
    /// <summary>
    /// Tokenizes documents (with the tokenizer's special tokens, i.e. BOS), truncates each to
    /// <paramref name="maxLength"/> tokens and groups them, in order, into batches of <paramref name="batchSize"/>
    /// (the last batch may be smaller: every document is used). A long document is tokenized only as far as needed for
    /// its first <paramref name="maxLength"/> tokens (the same ids as tokenizing it whole and truncating). Padding goes on <paramref name="padding"/>; only
    /// positions with attention mask 1 ever enter statistics.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> or <paramref name="maxLength"/> is not positive.</exception>
    /// <exception cref="PruningException">No document produced any token.</exception>
    public static TokenBatchList Tokenize(
        IReadOnlyList<string> documents, ITextTokenizer tokenizer, int batchSize, int maxLength,
        PaddingSide padding = PaddingSide.Right, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        TorchRuntime.EnsureLoaded();
        var sequences = new List<IReadOnlyList<int>>(documents.Count);
        foreach (var doc in documents)
        {
            // Only what is kept is tokenized: a 50 MB line costs as much as its first few thousand characters.
            var ids = tokenizer.EncodeTruncated(doc, maxLength, addSpecialTokens: true);
            if (ids.Count == 0) continue;
            sequences.Add(ids);
        }
        if (sequences.Count == 0)
            throw new PruningException($"None of the {documents.Count} calibration documents produced a token.");
        return Batch(sequences, tokenizer.PadId, batchSize, padding, device);
    }

    /// <summary>Groups already tokenized sequences, in order, into padded batches of <paramref name="batchSize"/>.</summary>
    /// <returns>The batches, owned by the returned list (dispose it).</returns>
    /// <exception cref="ArgumentException">No sequences, or an empty one.</exception>
    public static TokenBatchList Batch(
        IReadOnlyList<IReadOnlyList<int>> sequences, int padId, int batchSize,
        PaddingSide padding = PaddingSide.Right, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (sequences.Count == 0) throw new ArgumentException("No calibration sequences to batch.", nameof(sequences));
        TorchRuntime.EnsureLoaded();
        var batches = new List<TokenBatch>();
        try
        {
            for (int i = 0; i < sequences.Count; i += batchSize)
                batches.Add(TokenBatch.FromSequences(sequences.Skip(i).Take(batchSize).ToList(), padId, padding, device));
        }
        catch
        {
            foreach (var b in batches) b.Dispose();
            throw;
        }
        return new TokenBatchList(batches);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of the real token ids of every sequence, in order, independent of padding and
    /// batch size: each sequence contributes its length and its ids as little-endian int32.
    /// </summary>
    public static string Fingerprint(IEnumerable<TokenBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> word = stackalloc byte[4];
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            long width = batch.InputIds.shape[1];
            var ids = batch.InputIds.cpu().data<long>().ToArray();    // [B*T]
            var mask = batch.AttentionMask.cpu().data<long>().ToArray();
            for (int b = 0; b < batch.Count; b++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(word, batch.Lengths[b]);
                sha.AppendData(word);
                for (long t = 0; t < width; t++)
                {
                    long k = b * width + t;
                    if (mask[k] == 0) continue;
                    BinaryPrimitives.WriteInt32LittleEndian(word, checked((int)ids[k]));
                    sha.AppendData(word);
                }
            }
        }
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>Splits batches into a fit part and a held-out part: the last ⌈fraction·count⌉ batches are held out
    /// (at least one batch stays in the fit part).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="heldOutFraction"/> is outside [0, 1).</exception>
    public static (IReadOnlyList<TokenBatch> Fit, IReadOnlyList<TokenBatch> HeldOut) Split(IReadOnlyList<TokenBatch> batches, double heldOutFraction)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (!(heldOutFraction >= 0 && heldOutFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(heldOutFraction), $"Held-out fraction must be in [0, 1), got {heldOutFraction}.");
        int held = (int)Math.Ceiling(heldOutFraction * batches.Count);
        held = Math.Min(held, batches.Count - 1);
        return (batches.Take(batches.Count - held).ToList(), batches.Skip(batches.Count - held).ToList());
    }
}
