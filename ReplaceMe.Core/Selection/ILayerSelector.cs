using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Selection;

/// <summary>Chooses which runs of consecutive blocks to remove.</summary>
public interface ILayerSelector
{
    /// <summary>Short name used in reports and on the command line ("angular", "cosine", "bi", "fixed", "replacement-aware").</summary>
    string Name { get; }

    /// <summary>Chooses the cuts, sorted by <see cref="BlockCut.Start"/>, disjoint, each valid for the model.</summary>
    /// <exception cref="PruningException">The request cannot be satisfied (e.g. n ≥ block count).</exception>
    LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// True when <see cref="ChooseCuts"/> scores candidates on <see cref="SelectionRequest.HeldOut"/>: the pipeline then
    /// holds out the last calibration batches. Default false (every batch is used for fitting).
    /// </summary>
    bool NeedsHeldOut => false;

    /// <summary>The metric the pipeline's distance profile is measured with for this selector. Default angular.</summary>
    DistanceMetric ProfileMetric => DistanceMetric.Angular;

    /// <summary>This selector's settings, recorded in <c>replaceme.json</c> (snake_case keys, JSON-serializable values).</summary>
    IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?>();
}

/// <summary>Everything a selector may use.</summary>
/// <param name="Model">The model as it is before any removal (inside <c>ReplaceMePruner.Prune</c>, the pipeline's
/// adapter over the caller's model, which counts the blocks run: use it only through <see cref="ITransformerAdapter"/>).</param>
/// <param name="Profile">Distances between block outputs measured in one calibration pass.</param>
/// <param name="BlocksPerCut">n, the number of consecutive blocks per cut.</param>
/// <param name="CutCount">How many disjoint cuts of n blocks to choose (the paper's num_A).</param>
/// <param name="MergeAdjacent">Fuse chosen cuts that touch (end of one = start of next) into one longer cut.</param>
/// <param name="Calibration">Calibration batches (fit part) for selectors that estimate transforms.</param>
/// <param name="HeldOut">Held-out calibration batches for selectors that score candidate pruned models.</param>
/// <param name="Estimation">Estimator settings for selectors that fit transforms.</param>
/// <param name="Estimator">The pipeline's estimator, for selectors that fit transforms and were given none of their own.</param>
public sealed record SelectionRequest(
    ITransformerAdapter Model,
    DistanceProfile Profile,
    int BlocksPerCut,
    int CutCount,
    bool MergeAdjacent,
    IReadOnlyList<TokenBatch> Calibration,
    IReadOnlyList<TokenBatch> HeldOut,
    EstimationContext Estimation,
    ITransformEstimator? Estimator = null)
{
    /// <summary>Candidate fits the pipeline fed during its profile pass (the unmodified model), or null.</summary>
    internal CandidateStatistics? Prepass { get; init; }
}

/// <summary>A selector's decision.</summary>
/// <param name="Cuts">Chosen cuts, sorted by start, disjoint (after merging if requested).</param>
/// <param name="Scores">Score of every candidate start considered (lower is better), for reports and plots.</param>
/// <param name="Description">One line on how the cut was chosen.</param>
public sealed record LayerSelection(IReadOnlyList<BlockCut> Cuts, IReadOnlyDictionary<int, double> Scores, string Description)
{
    /// <summary>
    /// Transforms the selector already solved that the pipeline may use as they are (fitted on data and a model identical
    /// to the pipeline's fit of that cut), keyed by the cut in original indices; the pipeline owns and disposes them.
    /// </summary>
    internal IReadOnlyDictionary<BlockCut, TransformEstimate>? Solved { get; init; }
}
