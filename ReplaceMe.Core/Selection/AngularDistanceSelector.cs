using System.Globalization;
using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// The paper's selector (docs/method.md, "Selection"): the cut(s) of n blocks whose input and output states are closest according
/// to <see cref="SelectionRequest.Profile"/>. For one cut this is the argmin of the profile; for several, candidates are
/// sorted by distance (ties: lower start first) and accepted greedily when their blocks are disjoint from those
/// already accepted (adjacent cuts are disjoint), until <see cref="SelectionRequest.CutCount"/> are found; with
/// <see cref="SelectionRequest.MergeAdjacent"/> touching cuts are then fused into one longer cut.
/// </summary>
public sealed class AngularDistanceSelector : ILayerSelector
{
    private readonly DistanceMetric _metric;

    /// <summary>Creates the selector.</summary>
    /// <param name="metric">The metric the profile must have been measured with (angular by default; cosine = 1 − cos).</param>
    public AngularDistanceSelector(DistanceMetric metric = DistanceMetric.Angular) => _metric = metric;

    /// <inheritdoc/>
    public string Name => _metric == DistanceMetric.Angular ? "angular" : "cosine";

    /// <inheritdoc/>
    public DistanceMetric ProfileMetric => _metric;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?> { ["metric"] = _metric.ToString() };

    /// <inheritdoc/>
    /// <remarks><see cref="LayerSelection.Scores"/> maps every start of a length-n cut to its distance.</remarks>
    public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
    {
        CutPlanning.ValidateRequest(request, Name);
        CutPlanning.ValidateProfile(request, Name);
        if (request.Profile.Metric != _metric)
            throw new PruningException($"Selector '{Name}' expects a profile measured with the {_metric} metric, but it was measured with {request.Profile.Metric}.");
        int n = request.BlocksPerCut, blocks = request.Model.BlockCount;
        var row = request.Profile.ForLength(n);
        var scores = new Dictionary<int, double>();
        for (int s = 1; s + n <= blocks; s++)
        {
            double d = row[s - 1];
            if (!double.IsFinite(d))
                throw new PruningException($"Selector '{Name}': the profile's distance for cut [{s}, {s + n}) is {d.ToString(CultureInfo.InvariantCulture)}.");
            scores[s] = d;
        }
        var order = scores.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key).Select(kv => kv.Key);
        var chosen = CutPlanning.GreedyDisjoint(order, n, request.CutCount, Name);
        var cuts = CutPlanning.SortAndMerge(chosen, request.MergeAdjacent);
        string chosenText = string.Join(", ", chosen.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c} ({scores[c.Start]:G4})")));
        string mergedText = cuts.Count != chosen.Count ? $", merged into {string.Join(", ", cuts)}" : "";
        string description = $"{Name} distance ({request.Profile.Tokens}), n = {n}: {chosenText}{mergedText}";
        return new LayerSelection(cuts, scores, description);
    }
}
