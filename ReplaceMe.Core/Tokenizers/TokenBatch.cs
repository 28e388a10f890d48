using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>Which side of a sequence receives padding in a batch.</summary>
public enum PaddingSide
{
    /// <summary>Pad after the tokens (training/scoring default).</summary>
    Right,
    /// <summary>Pad before the tokens (generation default: last token of every row is real).</summary>
    Left,
}

/// <summary>
/// A padded batch of token sequences: ids and attention mask, both <c>[B, T]</c> int64 (mask 1 = real token),
/// with T the longest sequence. Owns its tensors.
/// </summary>
public sealed class TokenBatch : IDisposable
{
    private TokenBatch(Tensor inputIds, Tensor attentionMask, int[] lengths, PaddingSide side)
    {
        InputIds = inputIds;
        AttentionMask = attentionMask;
        Lengths = lengths;
        Side = side;
    }

    /// <summary>Token ids <c>[B, T]</c>, int64; padded positions hold the pad id.</summary>
    public Tensor InputIds { get; }

    /// <summary>1 for real tokens, 0 for padding, <c>[B, T]</c>, int64.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>Real length of each row.</summary>
    public IReadOnlyList<int> Lengths { get; }

    /// <summary>The side padding was put on.</summary>
    public PaddingSide Side { get; }

    /// <summary>Number of rows B.</summary>
    public int Count => Lengths.Count;

    /// <summary>Total number of real tokens.</summary>
    public long TokenCount => Lengths.Sum(l => (long)l);

    /// <summary>Pads sequences into a batch on <paramref name="device"/> (CPU when null).</summary>
    /// <exception cref="ArgumentException">No sequences, or an empty sequence.</exception>
    public static TokenBatch FromSequences(IReadOnlyList<IReadOnlyList<int>> sequences, int padId, PaddingSide side = PaddingSide.Right, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("A batch needs at least one sequence.", nameof(sequences));
        int width = 0;
        for (int b = 0; b < sequences.Count; b++)
        {
            if (sequences[b].Count == 0) throw new ArgumentException($"Sequence {b} is empty.", nameof(sequences));
            width = Math.Max(width, sequences[b].Count);
        }
        var ids = new long[sequences.Count * width];
        var mask = new long[sequences.Count * width];
        var lengths = new int[sequences.Count];
        for (int b = 0; b < sequences.Count; b++)
        {
            var seq = sequences[b];
            lengths[b] = seq.Count;
            int offset = side == PaddingSide.Left ? width - seq.Count : 0;
            for (int t = 0; t < width; t++) ids[b * width + t] = padId;
            for (int t = 0; t < seq.Count; t++)
            {
                ids[b * width + offset + t] = seq[t];
                mask[b * width + offset + t] = 1;
            }
        }
        var dev = device ?? CPU;
        return new TokenBatch(
            tensor(ids, [sequences.Count, width], ScalarType.Int64, dev),
            tensor(mask, [sequences.Count, width], ScalarType.Int64, dev),
            lengths, side);
    }

    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
    }
}
