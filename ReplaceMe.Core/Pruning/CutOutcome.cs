using ReplaceMe.Core.Estimation;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>What happened to one cut.</summary>
/// <param name="Cut">The cut in the original model's indices.</param>
/// <param name="Applied">The same cut in the indices of the model it was applied to (shifted left by the blocks that
/// earlier cuts removed; cuts are applied in ascending order).</param>
/// <param name="Report">The estimator's figures.</param>
/// <param name="Transform">T (<c>[d, d]</c> float64 on CPU, applied as X·T and folded into block
/// <c>Applied.Start − 1</c>); null for plain removal. Owned by the <see cref="PruningResult"/>.</param>
public sealed record CutOutcome(BlockCut Cut, BlockCut Applied, EstimatorReport Report, Tensor? Transform)
{
    /// <summary>The cut in the original model's indices.</summary>
    public BlockCut Cut { get; } = Cut;

    /// <summary>The same cut in the indices of the model it was applied to (shifted left by the blocks that earlier cuts removed; cuts are applied in ascending order).</summary>
    public BlockCut Applied { get; } = Applied;

    /// <summary>The estimator's figures.</summary>
    public EstimatorReport Report { get; } = Report;

    /// <summary>T (<c>[d, d]</c> float64 on CPU, applied as X·T and folded into block <c>Applied.Start − 1</c>); null for plain removal. Owned by the <see cref="PruningResult"/>.</summary>
    public Tensor? Transform { get; } = Transform;
}
