using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Surgery;

/// <summary>Applies a cut to a model: folds T into the MLP down-projection of block <c>Start − 1</c> and removes the cut's blocks.</summary>
public interface IModelSurgeon
{
    /// <summary>
    /// Folds <paramref name="transform"/> (<c>[d, d]</c>, applied as <c>X·T</c>; null = identity) into block
    /// <c>cut.Start − 1</c> (W ← Tᵀ·W, b ← Tᵀ·b, in float64, cast back to the weight dtype), then removes
    /// blocks <c>[cut.Start, cut.End)</c> through the adapter.
    /// </summary>
    void Apply(ITransformerAdapter model, BlockCut cut, Tensor? transform);
}
