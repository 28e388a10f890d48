using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// Selects real (unpadded) token positions from <c>[B, T, …]</c> tensors with a <c>[B, T]</c> attention mask.
/// Works for left padding, right padding or any other pattern, because it only reads the mask.
/// </summary>
internal static class TokenPositions
{
    /// <summary>Flat indices (into B·T) of every position whose mask is 1, int64 <c>[N]</c>.</summary>
    public static Tensor ValidFlatIndices(Tensor mask)
    {
        using var scope = NewDisposeScope();
        var flat = mask.reshape(-1).to(ScalarType.Int64);                 // [B·T]
        var idx = nonzero(flat).reshape(-1);                               // [N]
        return idx.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat indices (into B·T) of the last real token of each row that has at least one, int64 <c>[B']</c>
    /// (rows without real tokens are skipped).
    /// </summary>
    public static Tensor LastValidFlatIndices(Tensor mask)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(ScalarType.Int64);                                 // [B, T]
        long b = m.shape[0], t = m.shape[1];
        // (t + 1) at real positions, 0 at padding: the argmax is the last real position.
        var weighted = m * HeldScalars.Arange(1, t + 1, m.device).unsqueeze(0); // [B, T]
        var last = weighted.argmax(1);                                     // [B]
        var hasToken = m.sum(1).gt(HeldScalars.Zero);                      // [B]
        var flat = HeldScalars.Sum(HeldScalars.Times(HeldScalars.Arange(0, b, m.device), t), last); // [B]
        return flat.masked_select(hasToken).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat indices (into B·T) of positions t whose next token t + 1 is also real, and the flat indices of those next
    /// tokens, both int64 <c>[N]</c>: the positions where a next-token loss is defined.
    /// </summary>
    public static (Tensor Predictors, Tensor Targets) NextTokenPairs(Tensor mask)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(ScalarType.Int64);                                 // [B, T]
        long t = m.shape[1];
        var pairs = zeros_like(m);                                         // [B, T]: 1 where t and t+1 are real
        if (t > 1)
            pairs[TensorIndex.Colon, TensorIndex.Slice(0, t - 1)] = m.narrow(1, 0, t - 1) * m.narrow(1, 1, t - 1);
        var predictors = nonzero(pairs.reshape(-1)).reshape(-1);           // [N]
        var targets = HeldScalars.Plus(predictors, 1L);                                     // same row, next position
        return (predictors.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    /// <summary>Rows of <paramref name="states"/> <c>[B, T, d]</c> at the given flat indices: <c>[N, d]</c>.</summary>
    public static Tensor Rows(Tensor states, Tensor flatIndices)
    {
        long d = states.shape[^1];
        return states.reshape(-1, d).index_select(0, flatIndices);
    }
}
