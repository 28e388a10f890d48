using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// Cuts given by the user. They are authoritative: <see cref="SelectionRequest.BlocksPerCut"/> and
/// <see cref="SelectionRequest.CutCount"/> are not consulted (the cuts already say how many blocks go), while
/// <see cref="SelectionRequest.MergeAdjacent"/> fuses given cuts that touch. Each cut is validated against the model.
/// </summary>
public sealed class FixedCutSelector : ILayerSelector
{
    private readonly BlockCut[] _cuts;

    /// <summary>One cut <c>[start, start + length)</c>.</summary>
    public FixedCutSelector(int start, int length) : this([new BlockCut(start, start + length)]) { }

    /// <summary>Several cuts (any order; they must be disjoint).</summary>
    /// <exception cref="ArgumentException">No cut given.</exception>
    public FixedCutSelector(IEnumerable<BlockCut> cuts)
    {
        ArgumentNullException.ThrowIfNull(cuts);
        _cuts = [.. cuts];
        if (_cuts.Length == 0) throw new ArgumentException("At least one cut is required.", nameof(cuts));
    }

    /// <inheritdoc/>
    public string Name => "fixed";

    /// <summary>The cuts as given.</summary>
    public IReadOnlyList<BlockCut> Cuts => _cuts;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings =>
        new Dictionary<string, object?> { ["cuts"] = _cuts.Select(c => new[] { c.Start, c.End }).ToArray() };

    /// <inheritdoc/>
    /// <remarks><see cref="LayerSelection.Scores"/> is empty: nothing is measured.</remarks>
    public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Model, nameof(request));
        var sorted = CutPlanning.SortAndMerge(_cuts, merge: false);
        CutPlanning.ValidateCuts(sorted, request.Model.BlockCount, Name);
        var cuts = CutPlanning.SortAndMerge(sorted, request.MergeAdjacent);
        return new LayerSelection(cuts, new Dictionary<int, double>(), $"fixed: {string.Join(", ", cuts)}");
    }
}
