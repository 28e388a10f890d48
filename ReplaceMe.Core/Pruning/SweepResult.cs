using ReplaceMe.Core.Selection;

namespace ReplaceMe.Core.Pruning;

/// <summary>One (n, estimator) candidate of a <see cref="PruningSweep"/>, scored on the held-out batches.</summary>
/// <param name="Blocks">n, the blocks removed (one cut).</param>
/// <param name="Estimator">Estimator name.</param>
/// <param name="Cut">The cut chosen for n from the profile (original indices).</param>
/// <param name="Distance">The profile's distance of the cut.</param>
/// <param name="Perplexity">Held-out perplexity of the pruned model.</param>
/// <param name="MeanKl">Held-out mean per-token KL(original ‖ pruned).</param>
/// <param name="Seconds">Wall time to fit, fold and score this candidate.</param>
public sealed record SweepRow(int Blocks, string Estimator, BlockCut Cut, double Distance, double Perplexity, double MeanKl, double Seconds)
{
    /// <summary>n, the blocks removed (one cut).</summary>
    public int Blocks { get; } = Blocks;

    /// <summary>Estimator name.</summary>
    public string Estimator { get; } = Estimator;

    /// <summary>The cut chosen for n from the profile (original indices).</summary>
    public BlockCut Cut { get; } = Cut;

    /// <summary>The profile's distance of the cut.</summary>
    public double Distance { get; } = Distance;

    /// <summary>Held-out perplexity of the pruned model.</summary>
    public double Perplexity { get; } = Perplexity;

    /// <summary>Held-out mean per-token KL(original ‖ pruned).</summary>
    public double MeanKl { get; } = MeanKl;

    /// <summary>Wall time to fit, fold and score this candidate.</summary>
    public double Seconds { get; } = Seconds;
}

/// <summary>The outcome of <see cref="PruningSweep.Run"/>: every (n, estimator) row, the original's held-out perplexity,
/// the single profile, and the recommendation for the target.</summary>
/// <param name="OriginalPerplexity">The unpruned model's held-out perplexity.</param>
/// <param name="Rows">Rows by n, then in the order of the estimators.</param>
/// <param name="Profile">The one distance profile every cut was chosen from.</param>
/// <param name="Recommended">The recommended row (largest n meeting the perplexity target, or the n of the fraction
/// target, each with its best estimator); null without a target or when no n meets it.</param>
/// <param name="Reason">One line on how the recommendation was made (or why there is none).</param>
public sealed record SweepResult(double OriginalPerplexity, IReadOnlyList<SweepRow> Rows, DistanceProfile Profile, SweepRow? Recommended, string Reason)
{
    /// <summary>The unpruned model's held-out perplexity.</summary>
    public double OriginalPerplexity { get; } = OriginalPerplexity;

    /// <summary>Rows by n, then in the order of the estimators.</summary>
    public IReadOnlyList<SweepRow> Rows { get; } = Rows;

    /// <summary>The one distance profile every cut was chosen from.</summary>
    public DistanceProfile Profile { get; } = Profile;

    /// <summary>The recommended row; null without a target or when no n meets it.</summary>
    public SweepRow? Recommended { get; } = Recommended;

    /// <summary>One line on how the recommendation was made (or why there is none).</summary>
    public string Reason { get; } = Reason;

    /// <summary>The best row (lowest held-out perplexity) for each n.</summary>
    public IReadOnlyList<SweepRow> BestPerBlocks() => [.. Rows.GroupBy(r => r.Blocks).OrderBy(g => g.Key).Select(g => g.MinBy(r => r.Perplexity)!)];
}
