using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Selection;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

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

    /// <summary>
    /// How cuts are chosen: <see cref="AngularDistanceSelector"/> (the paper's, the default; 1 − cos with
    /// <c>new AngularDistanceSelector(DistanceMetric.Cosine)</c>), <see cref="BlockInfluenceSelector"/>,
    /// <see cref="FixedCutSelector"/>, <see cref="ReplacementAwareSelector"/>, or your own <see cref="ILayerSelector"/>.
    /// Each carries its own settings.
    /// </summary>
    public ILayerSelector Selector { get; init; } = new AngularDistanceSelector();

    /// <summary>
    /// How transforms are estimated: <see cref="LeastSquaresEstimator"/> (the default; ridge, structure and
    /// under-determined handling in its <see cref="LeastSquaresOptions"/>), <see cref="CosineEstimator"/> (its
    /// <see cref="CosineOptions"/>), <see cref="IdentityEstimator"/> (plain removal), or your own
    /// <see cref="ITransformEstimator"/>.
    /// </summary>
    public ITransformEstimator Estimator { get; init; } = new LeastSquaresEstimator();

    /// <summary>Seed for everything random (token subsampling, Adam batch order).</summary>
    public int Seed { get; init; }

    /// <summary>RAM budget for stored token rows (cosine estimator) before they spill to a temporary file.</summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    /// <summary>
    /// Memory for the candidates' streamed statistics kept during the profile pass, so that the first cut's transform
    /// needs no second pass over the calibration data: least squares keeps 2·d² float64 (plus its diagnostic sample) per
    /// candidate start, plus the rows of at most n pending fold blocks of one batch. When every candidate does not fit,
    /// or the estimator keeps token rows (cosine, custom estimators), the cut is fitted in a second pass as before.
    /// 0 always uses the second pass. Results are the same either way.
    /// </summary>
    public long StatisticsBudgetBytes { get; init; } = 2L << 30;

    /// <summary>
    /// How the calibration passes walk the model. Block-major runs block k over every batch before block k + 1, so a
    /// <see cref="Modeling.StreamedDecoderModel"/> reads each block once per pass; the hidden states between blocks are
    /// kept within <see cref="HiddenStateBudgetBytes"/> and spilled beyond it. Batch-major runs each batch through every
    /// block. Null (default): block-major for a streamed model, batch-major otherwise. Results are the same either way
    /// (docs/streaming.md). The replacement-aware selector's scoring and evaluation always run batch-major.
    /// </summary>
    public bool? BlockMajor { get; init; }

    /// <summary>RAM for the hidden states (and pending fold-block rows) of a block-major pass before they spill to
    /// <see cref="SpillDirectory"/>. Default 1 GiB.</summary>
    public long HiddenStateBudgetBytes { get; init; } = 1L << 30;

    /// <summary>Folder of the block-major pass's spill file (unlinked at once; nothing stays behind); null uses the
    /// system's temporary folder. Its free space is checked before the pass.</summary>
    public string? SpillDirectory { get; init; }

    /// <summary>Dtype of spilled hidden states: Float32 (default; exact for a float32 model), BFloat16 or Float16 (half
    /// the disk, rounded — results then differ slightly from the in-memory run).</summary>
    public ScalarType SpillDType { get; init; } = ScalarType.Float32;

    /// <summary>
    /// LibTorch intra-op threads for the run (set for its duration with <see cref="Runtime.TorchThreads"/> and
    /// restored afterwards); null leaves the process setting alone.
    /// </summary>
    public int? Threads { get; init; }

    /// <summary>Device for the estimators' solves; null uses the model's device.</summary>
    public Device? EstimationDevice { get; init; }

    /// <summary>Texts per calibration batch (used when the pipeline tokenizes documents itself).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per calibration document after truncation (used when the pipeline tokenizes documents itself).</summary>
    public int MaxLength { get; init; } = 1024;

    /// <summary>Fraction of calibration batches (the last ones) held out for selectors that score on held-out data
    /// (<see cref="ILayerSelector.NeedsHeldOut"/>, e.g. <see cref="ReplacementAwareSelector"/>); such a selector needs at
    /// least one held-out batch. Other selectors fit on every batch.</summary>
    public double HeldOutFraction { get; init; } = 0.2;

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
        if (Selector is null) throw new ArgumentException("Selector must be set (the default is AngularDistanceSelector).");
        if (Estimator is null) throw new ArgumentException("Estimator must be set (the default is LeastSquaresEstimator).");
        // A fixed cut is checked against the model here, before any calibration work.
        if (Selector is FixedCutSelector fixedCuts)
            foreach (var cut in fixedCuts.Cuts) cut.Validate(blockCount);
        if (!(HeldOutFraction >= 0 && HeldOutFraction < 1))
            throw new ArgumentException($"HeldOutFraction must be in [0, 1); got {HeldOutFraction}.");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be ≥ 1; got {BatchSize}.");
        if (MaxLength < 1) throw new ArgumentException($"MaxLength must be ≥ 1; got {MaxLength}.");
        if (StatisticsBudgetBytes < 0) throw new ArgumentException($"StatisticsBudgetBytes must be ≥ 0; got {StatisticsBudgetBytes}.");
        if (Threads is < 1) throw new ArgumentException($"Threads must be ≥ 1 when set; got {Threads}.");
        if (HiddenStateBudgetBytes < 0) throw new ArgumentException($"HiddenStateBudgetBytes must be ≥ 0; got {HiddenStateBudgetBytes}.");
        if (SpillDType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"SpillDType must be Float32, BFloat16 or Float16; got {SpillDType}.");
        if (MemoryBudgetBytes < 0) throw new ArgumentException($"MemoryBudgetBytes must be ≥ 0; got {MemoryBudgetBytes}.");
        if (MaxDistanceLength is { } m && m < n)
            throw new ArgumentException($"MaxDistanceLength ({m}) must be at least n ({n}).");
        return n;
    }
}
