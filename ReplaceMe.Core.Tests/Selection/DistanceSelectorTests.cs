using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Selection;

public class DistanceSelectorTests
{
    private static ToyDecoder Model(int blocks) =>
        ToyDecoder.Random(seed: 2, d: 4, vocab: 8, attnScales: [.. Enumerable.Repeat(0.5, blocks)], mlpScales: [.. Enumerable.Repeat(0.5, blocks)]);

    /// <summary>8 blocks; n = 2 distances by start 1..6: best [3,5), then [5,7) (adjacent), [4,6) overlaps, [2,4) overlaps, [6,8) overlaps, [1,3).</summary>
    private static DistanceProfile HandProfile(DistanceMetric metric = DistanceMetric.Angular) => new(8, metric, DistanceTokens.LastToken,
    [
        [0.30, 0.20, 0.25, 0.10, 0.35, 0.40, 0.50],
        [0.90, 0.50, 0.10, 0.20, 0.15, 0.80, double.NaN],
    ], sequences: 4);

    internal static SelectionRequest Request(ToyDecoder model, DistanceProfile profile, int n, int cuts, bool merge,
        IReadOnlyList<TokenBatch>? calibration = null, IReadOnlyList<TokenBatch>? heldOut = null) =>
        new(model, profile, n, cuts, merge, calibration ?? [], heldOut ?? [], new EstimationContext());

    [Fact]
    public void One_cut_is_the_argmin_and_scores_hold_every_start()
    {
        using var model = Model(8);
        var selection = new AngularDistanceSelector().ChooseCuts(Request(model, HandProfile(), 2, 1, merge: true));
        Assert.Equal([new BlockCut(3, 5)], selection.Cuts);
        Assert.Equal(6, selection.Scores.Count);
        Assert.Equal(0.15, selection.Scores[5]);
        Assert.Equal(0.90, selection.Scores[1]);
        var single = new AngularDistanceSelector().ChooseCuts(Request(model, HandProfile(), 1, 1, merge: false));
        Assert.Equal([new BlockCut(4, 5)], single.Cuts);
    }

    [Fact]
    public void Greedy_multi_cut_accepts_adjacent_candidates_skips_overlaps_and_merges_on_request()
    {
        using var model = Model(8);
        var selector = new AngularDistanceSelector();
        Assert.Equal([new BlockCut(3, 5), new BlockCut(5, 7)], selector.ChooseCuts(Request(model, HandProfile(), 2, 2, merge: false)).Cuts);
        Assert.Equal([new BlockCut(3, 7)], selector.ChooseCuts(Request(model, HandProfile(), 2, 2, merge: true)).Cuts);
        Assert.Equal([new BlockCut(1, 3), new BlockCut(3, 5), new BlockCut(5, 7)], selector.ChooseCuts(Request(model, HandProfile(), 2, 3, merge: false)).Cuts);
        Assert.Equal([new BlockCut(1, 7)], selector.ChooseCuts(Request(model, HandProfile(), 2, 3, merge: true)).Cuts);
        // n = 1: 4 (0.10), 2 (0.20), 3 (0.25), 1 (0.30): non-adjacent 2 and 4 stay apart even when merging.
        Assert.Equal([new BlockCut(2, 3), new BlockCut(4, 5)], selector.ChooseCuts(Request(model, HandProfile(), 1, 2, merge: true)).Cuts);
        Assert.Equal([new BlockCut(2, 5)], selector.ChooseCuts(Request(model, HandProfile(), 1, 3, merge: true)).Cuts);
    }

    [Fact]
    public void Cosine_selector_needs_a_cosine_profile()
    {
        using var model = Model(8);
        var cosine = new AngularDistanceSelector(DistanceMetric.Cosine);
        Assert.Equal("cosine", cosine.Name);
        Assert.Equal([new BlockCut(3, 5)], cosine.ChooseCuts(Request(model, HandProfile(DistanceMetric.Cosine), 2, 1, false)).Cuts);
        var ex = Assert.Throws<PruningException>(() => cosine.ChooseCuts(Request(model, HandProfile(), 2, 1, false)));
        Assert.Contains("Cosine", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Impossible_requests_are_clear_errors()
    {
        using var model = Model(8);
        var selector = new AngularDistanceSelector();
        Assert.Contains("at most 7", Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(model, HandProfile(), 8, 1, false))).Message, StringComparison.Ordinal);
        Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(model, HandProfile(), 0, 1, false)));
        Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(model, HandProfile(), 2, 0, false)));
        Assert.Contains("remove 8 blocks", Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(model, HandProfile(), 2, 4, false))).Message, StringComparison.Ordinal);
        Assert.Contains("maxLength ≥ 3", Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(model, HandProfile(), 3, 1, false))).Message, StringComparison.Ordinal);
        using var smaller = Model(6);
        Assert.Contains("measured on 8 blocks", Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(smaller, HandProfile(), 1, 1, false))).Message, StringComparison.Ordinal);

        // 5 blocks, n = 2, 2 cuts: [2,4) is best, and both [1,3) and [3,5) overlap it, so greedy finds only one.
        using var five = Model(5);
        var profile = new DistanceProfile(5, DistanceMetric.Angular, DistanceTokens.LastToken, [[1, 1, 1, 1], [0.5, 0.1, 0.6, double.NaN]], 1);
        var greedy = Assert.Throws<PruningException>(() => selector.ChooseCuts(Request(five, profile, 2, 2, false)));
        Assert.Contains("only 1 disjoint", greedy.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fixed_cuts_are_validated_sorted_and_merged_on_request()
    {
        using var model = Model(8);
        var request = Request(model, HandProfile(), 2, 1, merge: false);
        Assert.Equal([new BlockCut(3, 5)], new FixedCutSelector(3, 2).ChooseCuts(request).Cuts);
        var two = new FixedCutSelector([new BlockCut(5, 6), new BlockCut(2, 5)]);
        Assert.Equal([new BlockCut(2, 5), new BlockCut(5, 6)], two.ChooseCuts(request).Cuts);
        Assert.Equal([new BlockCut(2, 6)], two.ChooseCuts(request with { MergeAdjacent = true }).Cuts);
        Assert.Contains("block 0", Assert.Throws<PruningException>(() => new FixedCutSelector(0, 2).ChooseCuts(request)).Message, StringComparison.Ordinal);
        Assert.Contains("past the last block", Assert.Throws<PruningException>(() => new FixedCutSelector(7, 2).ChooseCuts(request)).Message, StringComparison.Ordinal);
        Assert.Contains("overlap", Assert.Throws<PruningException>(() => new FixedCutSelector([new BlockCut(2, 4), new BlockCut(3, 5)]).ChooseCuts(request)).Message, StringComparison.Ordinal);
        Assert.Throws<PruningException>(() => new FixedCutSelector(3, 0).ChooseCuts(request));
        Assert.Throws<ArgumentException>(() => new FixedCutSelector([]));
    }
}
