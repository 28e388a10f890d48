// A custom selector (docs/api-guide.md).
// <snippet:custom-selector>
using ReplaceMe.Core;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;

/// <summary>Like the distance selector, but only considers cuts inside the second half of the model.</summary>
public sealed class SecondHalfSelector : ILayerSelector
{
    public string Name => "second-half";

    public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
    {
        int n = request.BlocksPerCut, blocks = request.Profile.BlockCount;
        var scores = new Dictionary<int, double>();
        for (int start = Math.Max(1, blocks / 2); start + n <= blocks; start++)
            scores[start] = request.Profile[start, n]; // distance between the outputs of blocks start-1 and start+n-1
        if (scores.Count == 0)
            throw new PruningException($"No cut of {n} blocks fits in the second half of a {blocks}-block model.");
        int best = scores.MinBy(kv => kv.Value).Key;
        return new LayerSelection([new BlockCut(best, best + n)], scores, $"lowest distance among starts >= {blocks / 2}");
    }
}
// </snippet:custom-selector>
