using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Selection;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>How the pipeline chooses the cuts.</summary>
public enum SelectorKind
{
    /// <summary>Smallest mean distance between the states around the cut (the paper's selector; metric from
    /// <see cref="PruningOptions.DistanceMetric"/>: angular by default, or 1 − cos).</summary>
    Distance,
    /// <summary>ShortGPT block influence: 1 − cos between input and output of each single block.</summary>
    BlockInfluence,
    /// <summary>A user-given cut <c>[FixedStart, FixedStart + n)</c>.</summary>
    Fixed,
    /// <summary>Fit T for every candidate and keep the cut whose pruned model has the lowest held-out loss.</summary>
    ReplacementAware,
}

/// <summary>How the pipeline estimates the linear map replacing each cut.</summary>
public enum EstimatorKind
{
    /// <summary>Closed-form least squares in float64 (the paper's "LS", recommended).</summary>
    LeastSquares,
    /// <summary>Cosine objective minimised with Adam (the paper's numerical estimator).</summary>
    Cosine,
    /// <summary>No transform: plain removal (the UIDL baseline).</summary>
    Identity,
}

/// <summary>
/// Options of <see cref="ReplaceMePruner"/>. Indices are 0-based; a cut is the half-open range <c>[start, end)</c> of
/// removed blocks, and its transform is folded into block <c>start − 1</c>.
/// </summary>
public sealed record PruningOptions
{
    /// <summary>n, the number of consecutive blocks per cut. Give this or <see cref="TargetFraction"/>.</summary>
    public int? BlocksPerCut { get; init; }

    /// <summary>Fraction of all blocks to remove in total; n = max(1, round(fraction · blocks / CutCount)).</summary>
    public double? TargetFraction { get; init; }

    /// <summary>Number of disjoint cuts of n blocks (the paper's num_A).</summary>
    public int CutCount { get; init; } = 1;

    /// <summary>Fuse chosen cuts that touch into one longer cut with one transform (the paper's merge_consecutive).</summary>
    public bool MergeAdjacent { get; init; } = true;

    /// <summary>How cuts are chosen.</summary>
    public SelectorKind Selector { get; init; } = SelectorKind.Distance;

    /// <summary>First removed block for <see cref="SelectorKind.Fixed"/> (required there, not allowed otherwise).</summary>
    public int? FixedStart { get; init; }

    /// <summary>Score only the k best candidates by distance in <see cref="SelectorKind.ReplacementAware"/>; null scores all.</summary>
    public int? ReplacementAwareTopK { get; init; }

    /// <summary>How transforms are estimated.</summary>
    public EstimatorKind Estimator { get; init; } = EstimatorKind.LeastSquares;

    /// <summary>Ridge α for least squares (paper Table 5).</summary>
    public double Ridge { get; init; }

    /// <summary>Least squares: accept fewer valid tokens than d (adds a tiny ridge and logs a warning) instead of failing.</summary>
    public bool AllowUnderdetermined { get; init; }

    /// <summary>Cosine estimator settings; null uses the paper's defaults (Adam, lr 1e-4, 1024 rows, 10 epochs).</summary>
    public CosineOptions? Cosine { get; init; }

    /// <summary>An estimator of your own; when set it is used instead of <see cref="Estimator"/>.</summary>
    public ITransformEstimator? CustomEstimator { get; init; }

    /// <summary>A selector of your own; when set it is used instead of <see cref="Selector"/>.</summary>
    public ILayerSelector? CustomSelector { get; init; }

    /// <summary>Seed for everything random (token subsampling, Adam batch order).</summary>
    public int Seed { get; init; }

    /// <summary>RAM budget for stored token rows (cosine estimator) before they spill to a temporary file.</summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    /// <summary>Device for the estimators' solves; null uses the model's device.</summary>
    public Device? EstimationDevice { get; init; }

    /// <summary>Texts per calibration batch (used when the pipeline tokenizes documents itself).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per calibration document after truncation (used when the pipeline tokenizes documents itself).</summary>
    public int MaxLength { get; init; } = 1024;

    /// <summary>Fraction of calibration batches (the last ones) held out for <see cref="SelectorKind.ReplacementAware"/>
    /// scoring; that selector needs at least one held-out batch. Other selectors fit on every batch.</summary>
    public double HeldOutFraction { get; init; } = 0.2;

    /// <summary>Distance between states for the profile and the distance selector.</summary>
    public DistanceMetric DistanceMetric { get; init; } = DistanceMetric.Angular;

    /// <summary>Positions entering the distances (the paper: last token only).</summary>
    public DistanceTokens DistanceTokens { get; init; } = DistanceTokens.LastToken;

    /// <summary>Largest n in the distance profile (the heatmap's height); null = n. Clamped to blocks − 1.</summary>
    public int? MaxDistanceLength { get; init; }

    /// <summary>Free text naming the calibration data, recorded in the provenance file.</summary>
    public string CalibrationSource { get; init; } = "unspecified";

    /// <summary>Checks the options against a model with <paramref name="blockCount"/> blocks and returns n. Cheap: call it
    /// right after loading the model, before generating or reading calibration text.</summary>
    /// <exception cref="ArgumentException">An option is out of range or options contradict each other (named).</exception>
    /// <exception cref="PruningException">The model has too few blocks for the request.</exception>
    public int ResolveBlocksPerCut(int blockCount)
    {
        if (CutCount < 1) throw new ArgumentException($"CutCount must be ≥ 1; got {CutCount}.");
        if (BlocksPerCut is not null && TargetFraction is not null)
            throw new ArgumentException("Give either BlocksPerCut or TargetFraction, not both.");
        int n;
        if (BlocksPerCut is { } given)
        {
            if (given < 1) throw new ArgumentException($"BlocksPerCut must be ≥ 1; got {given}.");
            n = given;
        }
        else if (TargetFraction is { } f)
        {
            if (!(f > 0 && f < 1)) throw new ArgumentException($"TargetFraction must be in (0, 1); got {f}.");
            n = Math.Max(1, (int)Math.Round(f * blockCount / CutCount, MidpointRounding.AwayFromZero));
        }
        else throw new ArgumentException("Set BlocksPerCut (n) or TargetFraction.");

        if (n >= blockCount)
            throw new PruningException($"Cannot remove {n} consecutive blocks from a model with {blockCount} blocks: n must be < {blockCount} (block 0 always stays).");
        if ((long)n * CutCount > blockCount - 1)
            throw new PruningException($"{CutCount} cuts of {n} blocks remove {n * CutCount} blocks, but at most {blockCount - 1} of {blockCount} can go (block 0 always stays).");
        if (Selector == SelectorKind.Fixed && CustomSelector is null)
        {
            if (FixedStart is null) throw new ArgumentException("The fixed selector needs FixedStart.");
            if (CutCount != 1) throw new ArgumentException("The fixed selector takes one cut; use CustomSelector = new FixedCutSelector(cuts) for several.");
            new BlockCut(FixedStart.Value, FixedStart.Value + n).Validate(blockCount); // before any calibration work
        }
        else if (FixedStart is not null)
            throw new ArgumentException("FixedStart is only used by the fixed selector.");
        if (ReplacementAwareTopK is not null && (Selector != SelectorKind.ReplacementAware || CustomSelector is not null))
            throw new ArgumentException("ReplacementAwareTopK is only used by the replacement-aware selector.");
        if (Cosine is not null && (Estimator != EstimatorKind.Cosine || CustomEstimator is not null))
            throw new ArgumentException("Cosine options are only used by the cosine estimator.");
        if ((Ridge != 0 || AllowUnderdetermined) && (Estimator != EstimatorKind.LeastSquares || CustomEstimator is not null))
            throw new ArgumentException("Ridge and AllowUnderdetermined are only used by the least-squares estimator.");
        if (!(HeldOutFraction >= 0 && HeldOutFraction < 1))
            throw new ArgumentException($"HeldOutFraction must be in [0, 1); got {HeldOutFraction}.");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be ≥ 1; got {BatchSize}.");
        if (MaxLength < 1) throw new ArgumentException($"MaxLength must be ≥ 1; got {MaxLength}.");
        if (MemoryBudgetBytes < 0) throw new ArgumentException($"MemoryBudgetBytes must be ≥ 0; got {MemoryBudgetBytes}.");
        if (MaxDistanceLength is { } m && m < n)
            throw new ArgumentException($"MaxDistanceLength ({m}) must be at least n ({n}).");
        return n;
    }
}
