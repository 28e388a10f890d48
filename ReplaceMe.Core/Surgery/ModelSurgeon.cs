using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Surgery;

/// <summary>
/// The standard surgeon. With the MLP output of block <c>i = cut.Start − 1</c> written as rows
/// <c>M = h·Wᵀ + b</c> (down-projection weight W <c>[d, d_ff]</c>, bias b <c>[d]</c>), replacing M by <c>M·T</c> gives
/// <c>h·(TᵀW)ᵀ + Tᵀb</c>, so the fold is <c>W ← Tᵀ·W</c>, <c>b ← Tᵀ·b</c>. Both products are computed in float64 and
/// cast back to the weight's dtype and device; then the adapter removes <c>[cut.Start, cut.End)</c> and renumbers.
/// </summary>
public sealed class ModelSurgeon : IModelSurgeon
{
    /// <summary>Creates the surgeon.</summary>
    public ModelSurgeon() => TorchRuntime.EnsureLoaded();

    /// <inheritdoc />
    /// <exception cref="PruningException">The cut is invalid for the model, or T has the wrong shape or is not finite.</exception>
    public void Apply(ITransformerAdapter model, BlockCut cut, Tensor? transform)
    {
        ArgumentNullException.ThrowIfNull(model);
        cut.Validate(model.BlockCount);
        if (transform is not null) Fold(model, cut.FoldBlock, transform);
        model.RemoveBlocks(cut.Start, cut.End);
    }

    /// <summary>Folds T into the down-projection of <paramref name="block"/> without removing anything.</summary>
    internal static void Fold(ITransformerAdapter model, int block, Tensor transform)
    {
        int d = model.HiddenSize;
        if (transform.dim() != 2 || transform.shape[0] != d || transform.shape[1] != d)
            throw new PruningException($"Transform for block {block} has shape [{string.Join(", ", transform.shape)}], expected [{d}, {d}].");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var t = transform.to(ScalarType.Float64, CPU);                                 // [d, d]
        if (!t.isfinite().all().item<bool>())
            throw new PruningException($"Transform for block {block} contains NaN or infinite values; refusing to fold it.");
        var linear = model.GetDownProjection(block);
        var weight = linear.weight ?? throw new PruningException($"Block {block}'s down-projection has no weight.");
        if (weight.shape[0] != d)
            throw new PruningException($"Block {block}'s down-projection weight is [{string.Join(", ", weight.shape)}]; expected d = {d} rows.");
        var tT = t.t();                                                                  // [d, d]
        var folded = tT.matmul(weight.to(ScalarType.Float64, CPU));                      // [d, d_ff]
        weight.copy_(folded.to(weight.dtype, weight.device));
        if (linear.bias is { } bias)
        {
            var b = tT.matmul(bias.to(ScalarType.Float64, CPU));                         // [d]
            bias.copy_(b.to(bias.dtype, bias.device));
        }
    }
}
