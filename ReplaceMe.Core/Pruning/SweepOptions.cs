using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// Settings of <see cref="PruningSweep"/>: which n to try (1..<see cref="MaxBlocks"/>, one cut each), which estimators,
/// how the cut is chosen from the single distance profile, which part of the calibration is held out for scoring, and
/// the target that decides the recommended n (at most one of <see cref="MaxPerplexityIncrease"/> and
/// <see cref="RemoveFraction"/>; with neither, the sweep only reports).
/// </summary>
public sealed record SweepOptions
{
    /// <summary>Largest n (blocks removed, one cut); must be below the model's block count.</summary>
    public int MaxBlocks { get; init; } = 2;

    /// <summary>Estimators to compare at every n; names must differ. Default: least squares.</summary>
    public IReadOnlyList<ITransformEstimator> Estimators { get; init; } = [new LeastSquaresEstimator()];

    /// <summary>How the cut for each n is chosen from the profile (default: the paper's angular distance). A
    /// <see cref="FixedCutSelector"/> is refused (it ignores n).</summary>
    public ILayerSelector Selector { get; init; } = new AngularDistanceSelector();

    /// <summary>Fraction of the calibration batches (the last ones) held out for scoring; the rest profile and fit. In (0, 1).</summary>
    public double HeldOutFraction { get; init; } = 0.2;

    /// <summary>Target "keep held-out perplexity within +x of the original" (0.1 = +10 %): the recommendation is the largest
    /// n whose best estimator meets it.</summary>
    public double? MaxPerplexityIncrease { get; init; }

    /// <summary>Target "remove this fraction of the blocks": n = max(1, round(fraction · blocks)), with its best estimator.</summary>
    public double? RemoveFraction { get; init; }

    /// <summary>Positions entering the distances (the paper: last token only).</summary>
    public DistanceTokens DistanceTokens { get; init; } = DistanceTokens.LastToken;

    /// <summary>Seed for the estimators (as <see cref="PruningOptions.Seed"/>).</summary>
    public int Seed { get; init; }

    /// <summary>RAM budget for the estimators' stored rows (as <see cref="PruningOptions.MemoryBudgetBytes"/>).</summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    /// <summary>Checks the settings against a model with <paramref name="blockCount"/> blocks.</summary>
    /// <exception cref="ArgumentException">A setting is out of range or settings contradict each other (named).</exception>
    public void Validate(int blockCount)
    {
        if (MaxBlocks < 1 || MaxBlocks >= blockCount)
            throw new ArgumentException($"SweepOptions.MaxBlocks must be in [1, {blockCount - 1}] for a {blockCount}-block model; got {MaxBlocks}.");
        if (Estimators is null || Estimators.Count == 0) throw new ArgumentException("SweepOptions.Estimators must name at least one estimator.");
        if (Estimators.Select(e => e.Name).Distinct().Count() != Estimators.Count)
            throw new ArgumentException($"SweepOptions.Estimators repeat a name: {string.Join(", ", Estimators.Select(e => e.Name))}.");
        if (Selector is null) throw new ArgumentException("SweepOptions.Selector must be set.");
        if (Selector is FixedCutSelector) throw new ArgumentException("A sweep chooses a cut for every n; a FixedCutSelector removes one given cut. Use a distance selector.");
        if (!(HeldOutFraction > 0 && HeldOutFraction < 1)) throw new ArgumentException($"SweepOptions.HeldOutFraction must be in (0, 1); got {HeldOutFraction}.");
        if (MaxPerplexityIncrease is not null && RemoveFraction is not null)
            throw new ArgumentException("Give at most one target: MaxPerplexityIncrease or RemoveFraction.");
        if (MaxPerplexityIncrease is { } x && !(x >= 0 && double.IsFinite(x)))
            throw new ArgumentException($"SweepOptions.MaxPerplexityIncrease must be a finite number ≥ 0; got {x}.");
        if (RemoveFraction is { } p)
        {
            if (!(p > 0 && p < 1)) throw new ArgumentException($"SweepOptions.RemoveFraction must be in (0, 1); got {p}.");
            int n = BlocksFor(p, blockCount);
            if (n > MaxBlocks) throw new ArgumentException($"RemoveFraction {p} means {n} of {blockCount} blocks, more than MaxBlocks {MaxBlocks}.");
        }
        if (MemoryBudgetBytes < 0) throw new ArgumentException($"SweepOptions.MemoryBudgetBytes must be ≥ 0; got {MemoryBudgetBytes}.");
    }

    internal static int BlocksFor(double fraction, int blockCount) => Math.Max(1, (int)Math.Round(fraction * blockCount, MidpointRounding.AwayFromZero));
}
