using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Modeling;
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

    private static void CheckShapes(Tensor states, Tensor attentionMask)
    {
        if (states.dim() != 3 || attentionMask.dim() != 2
            || states.shape[0] != attentionMask.shape[0] || states.shape[1] != attentionMask.shape[1])
            throw new ArgumentException(
                $"Expected states [B, T, d] and an attention mask [B, T] with the same B and T; got states [{string.Join(", ", states.shape)}] and mask [{string.Join(", ", attentionMask.shape)}].",
                nameof(attentionMask));
    }
}
