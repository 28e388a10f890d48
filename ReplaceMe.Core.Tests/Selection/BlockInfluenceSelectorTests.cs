using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;
using static ReplaceMe.Core.Tests.Selection.SelectionFixtures;

namespace ReplaceMe.Core.Tests.Selection;

public class BlockInfluenceSelectorTests
{
    private static ToyDecoder Model(int[] identity) => ToyDecoder.Random(seed: 21, d: 8, vocab: 16,
        attnScales: [0.6, 0.4, 0.5, 0.3, 0.7, 0.5], mlpScales: [0.8, 0.6, 0.5, 0.7, 0.4, 0.9], identity: identity);

    private static DistanceProfile AnyProfile() =>
        new(6, DistanceMetric.Angular, DistanceTokens.LastToken, [[0.1, 0.2, 0.3, 0.4, 0.5]], 1);

    [Fact]
    public void Identity_blocks_have_zero_influence_and_are_chosen()
    {
        using var model = Model([2, 4]);
        var sequences = Sequences(seed: 8, count: 5, minLength: 2, maxLength: 8, 16);
        using var left = Batch(sequences.Take(3), PaddingSide.Left);
        using var right = Batch(sequences.Skip(3), PaddingSide.Right);
        var selection = new BlockInfluenceSelector().ChooseCuts(
            DistanceSelectorTests.Request(model, AnyProfile(), 1, 2, merge: true, calibration: [left, right]));
        Assert.Equal([new BlockCut(2, 3), new BlockCut(4, 5)], selection.Cuts);
        Assert.Equal([1, 2, 3, 4, 5], selection.Scores.Keys.Order());
        Assert.True(selection.Scores[2] < 1e-12 && selection.Scores[4] < 1e-12);

        // BI(k) = mean over every real token of 1 − cos(input of k, output of k), from captured states in float64.
        var states = States(model, left).Concat(States(model, right)).ToList();
        for (int k = 1; k < 6; k++)
        {
            double expected = Reference(states, s: k, n: 1, angular: false, lastToken: false);
            Assert.True(Math.Abs(expected - selection.Scores[k]) < 1e-6, $"block {k}: expected {expected}, got {selection.Scores[k]}");
            if (k is not (2 or 4)) Assert.True(expected > 1e-3);
        }
    }

    [Fact]
    public void Consecutive_chosen_blocks_form_one_cut_only_when_merging()
    {
        using var model = Model([2, 3]);
        using var batch = Batch(Sequences(seed: 4, count: 4, minLength: 3, maxLength: 6, 16), PaddingSide.Right);
        var selector = new BlockInfluenceSelector();
        Assert.Equal([new BlockCut(2, 4)], selector.ChooseCuts(DistanceSelectorTests.Request(model, AnyProfile(), 2, 1, true, [batch])).Cuts);
        Assert.Equal([new BlockCut(2, 3), new BlockCut(3, 4)], selector.ChooseCuts(DistanceSelectorTests.Request(model, AnyProfile(), 1, 2, false, [batch])).Cuts);
        Assert.Equal(0, model.HeadCalls);
    }

    [Fact]
    public void Block_zero_is_never_chosen_and_missing_data_is_an_error()
    {
        using var model = Model([0, 3]);
        using var batch = Batch(Sequences(seed: 4, count: 2, minLength: 3, maxLength: 6, 16), PaddingSide.Right);
        var selection = new BlockInfluenceSelector().ChooseCuts(DistanceSelectorTests.Request(model, AnyProfile(), 1, 1, true, [batch]));
        Assert.Equal([new BlockCut(3, 4)], selection.Cuts);
        Assert.False(selection.Scores.ContainsKey(0));
        var ex = Assert.Throws<PruningException>(() => new BlockInfluenceSelector().ChooseCuts(DistanceSelectorTests.Request(model, AnyProfile(), 1, 1, true, [])));
        Assert.Contains("Calibration", ex.Message, StringComparison.Ordinal);
    }
}
