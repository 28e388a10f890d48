using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>
/// Selects the rows of a padded batch that belong to real tokens (attention mask = 1), so padding never enters any
/// statistic (docs/method.md, "Padding tokens"). Works for left and right padding alike.
/// </summary>
internal static class ValidTokens
{
    /// <summary>
    /// Rows of <paramref name="states"/> (<c>[B, T, d]</c>) at positions where <paramref name="attentionMask"/>
    /// (<c>[B, T]</c>, any integer or bool dtype) is non-zero, as <c>[N, d]</c> in row-major (batch, then position)
    /// order. The result is on the states' device with the states' dtype.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes do not agree.</exception>
    public static Tensor Gather(Tensor states, Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(attentionMask);
        CheckShapes(states, attentionMask);
        using var scope = NewDisposeScope();
        long d = states.shape[2];
        var flatIndex = FlatIndex(attentionMask, states.device); // [N] int64
        var rows = states.reshape(-1, d).index_select(0, flatIndex); // [N, d]
        return rows.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat indices (<c>b·T + t</c>) of the valid positions, <c>[N]</c> int64 on <paramref name="device"/>, ascending.
    /// </summary>
    public static Tensor FlatIndex(Tensor attentionMask, Device device)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var scope = NewDisposeScope();
        var valid = attentionMask.reshape(-1).ne(HeldScalars.Zero); // [B·T] bool
        var index = valid.nonzero().reshape(-1).to(device); // [N] int64, ascending
        return index.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Position of the last real token of every row, <c>[B]</c> int64 on the mask's device: <c>T − 1</c> for left
    /// padding, <c>length − 1</c> for right padding.
    /// </summary>
    /// <exception cref="ArgumentException">The mask is not 2-D, or some row has no real token.</exception>
    public static Tensor LastTokenIndex(Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (attentionMask.dim() != 2)
            throw new ArgumentException($"The attention mask must be [B, T]; got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));
        using var scope = NewDisposeScope();
        var valid = attentionMask.ne(HeldScalars.Zero); // [B, T] bool
        if (valid.any(1).logical_not().any().item<bool>())
            throw new ArgumentException("Every row of the attention mask needs at least one real token (mask = 1).", nameof(attentionMask));
        long width = attentionMask.shape[1];
        // Position + 1 at valid places, 0 elsewhere: the row maximum is one past the last real token.
        var positions = HeldScalars.Arange(1, width + 1, attentionMask.device).unsqueeze(0); // [1, T]
        var last = positions.mul(valid.to(ScalarType.Int64)).amax([1]).sub(HeldScalars.One); // [B]
        return last.MoveToOuterDisposeScope();
    }

    /// <summary>The state of the last real token of every row, <c>[B, d]</c>.</summary>
    /// <exception cref="ArgumentException">Shapes do not agree, or some row has no real token.</exception>
    public static Tensor GatherLast(Tensor states, Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(attentionMask);
        CheckShapes(states, attentionMask);
        using var scope = NewDisposeScope();
        var last = LastTokenIndex(attentionMask).to(states.device); // [B]
        var index = last.view(-1, 1, 1).expand(-1, 1, states.shape[2]); // [B, 1, d]
        var rows = states.gather(1, index).squeeze(1); // [B, d]
        return rows.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat indices (<c>b·T + t</c>) of the last real token of each row that has one, <c>[B']</c> int64 on the mask's
    /// device; rows without a real token are skipped.
    /// </summary>
    public static Tensor LastFlatIndex(Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var scope = NewDisposeScope();
        var m = attentionMask.ne(HeldScalars.Zero).to(ScalarType.Int64);  // [B, T] 0/1
        long b = m.shape[0], t = m.shape[1];
        // (t + 1) at real positions, 0 at padding: the argmax is the last real position.
        var weighted = m * HeldScalars.Arange(1, t + 1, m.device).unsqueeze(0); // [B, T]
        var last = weighted.argmax(1);                                     // [B]
        var hasToken = m.sum(1).gt(HeldScalars.Zero);                      // [B]
        var flat = HeldScalars.Sum(HeldScalars.Times(HeldScalars.Arange(0, b, m.device), t), last); // [B]
        return flat.masked_select(hasToken).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat indices of the positions t whose next position t + 1 is also real, and the flat indices of those next
    /// positions, both <c>[N]</c> int64: where a next-token loss is defined.
    /// </summary>
    public static (Tensor Predictors, Tensor Targets) NextTokenPairs(Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var scope = NewDisposeScope();
        var m = attentionMask.ne(HeldScalars.Zero).to(ScalarType.Int64);  // [B, T] 0/1
        long t = m.shape[1];
        var pairs = zeros_like(m);                                         // [B, T]: 1 where t and t+1 are real
        if (t > 1)
            pairs[TensorIndex.Colon, TensorIndex.Slice(0, t - 1)] = m.narrow(1, 0, t - 1) * m.narrow(1, 1, t - 1);
        var predictors = nonzero(pairs.reshape(-1)).reshape(-1);           // [N]
        var targets = HeldScalars.Plus(predictors, 1L);                    // same row, next position
        return (predictors.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    /// <summary>Rows of <paramref name="states"/> <c>[B, T, d]</c> at the given flat indices: <c>[N, d]</c>.</summary>
    public static Tensor Rows(Tensor states, Tensor flatIndices)
    {
        ArgumentNullException.ThrowIfNull(states);
        long d = states.shape[^1];
        return states.reshape(-1, d).index_select(0, flatIndices);
    }

    private static void CheckShapes(Tensor states, Tensor attentionMask)
    {
        if (states.dim() != 3 || attentionMask.dim() != 2
            || states.shape[0] != attentionMask.shape[0] || states.shape[1] != attentionMask.shape[1])
            throw new ArgumentException(
                $"Expected states [B, T, d] and an attention mask [B, T] with the same B and T; got states [{string.Join(", ", states.shape)}] and mask [{string.Join(", ", attentionMask.shape)}].",
                nameof(attentionMask));
    }
}
