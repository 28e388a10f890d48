using System.Globalization;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;
using static ReplaceMe.Core.Tests.Selection.SelectionFixtures;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Selection;

/// <summary>The two toy models and their data, built once for the class.</summary>
public sealed class LinearChannelFixture : IDisposable
{
    private readonly Lazy<(ToyDecoder, ReplacementAwareSelectorTests.Data)> _one = new(() => Build([2]));
    private readonly Lazy<(ToyDecoder, ReplacementAwareSelectorTests.Data)> _two = new(() => Build([2, 3]));

    internal (ToyDecoder Model, ReplacementAwareSelectorTests.Data Data) OneLinearBlock => _one.Value;
    internal (ToyDecoder Model, ReplacementAwareSelectorTests.Data Data) TwoLinearBlocks => _two.Value;

    private static (ToyDecoder, ReplacementAwareSelectorTests.Data) Build(int[] linear)
    {
        var model = ReplacementAwareSelectorTests.LinearChannelModel(linear);
        return (model, new ReplacementAwareSelectorTests.Data(model));
    }

    public void Dispose()
    {
        foreach (var lazy in new[] { _one, _two })
            if (lazy.IsValueCreated) { lazy.Value.Item2.Dispose(); lazy.Value.Item1.Dispose(); }
    }
}

public class ReplacementAwareSelectorTests(LinearChannelFixture fixture) : IClassFixture<LinearChannelFixture>
{
    private const int Dim = 8, Vocab = 16, Blocks = 6;

    /// <summary>
    /// Dimensions 0..3 are a channel that only block 1's MLP writes (embeddings and blocks 0–1's other parts write 4..7).
    /// Each block in <paramref name="linear"/> has no attention and MLP M = X·B with B mapping the channel to itself, so
    /// its effect is exactly linear in block 1's MLP output: removing it is exactly repaired by T = I + B (composed over
    /// consecutive linear blocks). Block 4 is tiny and non-linear, so the angular distance prefers it.
    /// </summary>
    internal static ToyDecoder LinearChannelModel(int[] linear)
    {
        _ = manual_seed(31);
        var toResidual = cat([zeros(4), ones(4)]).unsqueeze(0);    // [1, d]: keeps columns 4..7
        var toChannel = cat([ones(4), zeros(4)]).unsqueeze(0);     // [1, d]: keeps columns 0..3
        Tensor R(double scale) => randn(Dim, Dim) * (scale / Math.Sqrt(Dim));
        var blocks = new List<ToyBlock>();
        for (int k = 0; k < Blocks; k++)
        {
            ToyBlock block;
            if (k == 0) block = new(R(0.5) * toResidual, R(1), R(0.7) * toResidual);
            else if (k == 1) block = new(R(0.5) * toResidual, R(1), R(2.0) * toChannel);
            else if (linear.Contains(k))
            {
                var b = zeros(Dim, Dim);
                b[TensorIndex.Slice(0, 4), TensorIndex.Slice(0, 4)] = randn(4, 4) * 0.6;
                block = new(zeros(Dim, Dim), b, eye(Dim), Linear: true);
            }
            else if (k == 4) block = new(R(0.03), R(1), R(0.03));
            else block = new(R(0.5), R(1), R(0.7));
            blocks.Add(new ToyBlock(block.Attn.DetachFromDisposeScope(), block.Up.DetachFromDisposeScope(), block.Down.DetachFromDisposeScope(), block.Linear));
        }
        return new ToyDecoder((randn(Vocab, Dim) * toResidual).DetachFromDisposeScope(), blocks, (R(3) * Math.Sqrt(Dim) / Math.Sqrt(Dim)).matmul(randn(Dim, Vocab)).DetachFromDisposeScope());
    }

    /// <summary>Sequences sampled from the model itself, so that any change of the model raises the expected loss.</summary>
    private static List<int[]> Sample(ToyDecoder model, int seed, int count, int length)
    {
        using var scope = NewDisposeScope();
        _ = manual_seed(seed);
        var ids = randint(1, Vocab, [count, 1], ScalarType.Int64);
        for (int step = 1; step < length; step++)
        {
            using var state = model.Embed(ids, ones_like(ids));
            model.RunBlocks(state, 0, model.BlockCount);
            var last = model.Head(state).select(1, -1);                    // [B, V]
            ids = cat([ids, multinomial(nn.functional.softmax(last, 1), 1)], 1);
        }
        var flat = ids.data<long>().ToArray();
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(b => flat.Skip(b * length).Take(rng.Next(length / 2, length + 1)).Select(v => (int)v).ToArray())];
    }

    /// <summary>Mean next-token NLL of the unmodified model, computed in float64 from its logits.</summary>
    private static double OriginalLoss(ToyDecoder model, IEnumerable<TokenBatch> batches) => MeanNextTokenLoss(batches, batch =>
    {
        using var state = model.Embed(batch.InputIds, batch.AttentionMask);
        model.RunBlocks(state, 0, model.BlockCount);
        return model.Head(state);
    });

    internal sealed class Data : IDisposable
    {
        public Data(ToyDecoder model)
        {
            var calibration = Sample(model, seed: 1, count: 24, length: 10);
            var heldOut = Sample(model, seed: 2, count: 48, length: 12);
            Calibration = [Batch(calibration.Take(12), PaddingSide.Right), Batch(calibration.Skip(12), PaddingSide.Left)];
            HeldOut = [Batch(heldOut.Take(24), PaddingSide.Left), Batch(heldOut.Skip(24), PaddingSide.Right)];
            Profile = new DistanceProfiler().Measure(model, Calibration, Blocks - 1);
        }

        public List<TokenBatch> Calibration { get; }
        public List<TokenBatch> HeldOut { get; }
        public DistanceProfile Profile { get; }

        public void Dispose()
        {
            Calibration.ForEach(b => b.Dispose());
            HeldOut.ForEach(b => b.Dispose());
        }
    }

    private static string Show(IReadOnlyDictionary<int, double> scores) =>
        string.Join(", ", scores.OrderBy(kv => kv.Key).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}: {kv.Value:G6}")));

    [Fact]
    public void Picks_the_exactly_linear_block_although_the_angular_distance_prefers_another()
    {
        var (model, data) = fixture.OneLinearBlock;
        Assert.Equal(new BlockCut(4, 5), DistanceProfiler.BestCut(data.Profile, 1));
        Assert.True(data.Profile[2, 1] > 2 * data.Profile[4, 1]);

        var estimator = new PinvLeastSquaresTestEstimator();
        var request = DistanceSelectorTests.Request(model, data.Profile, 1, 1, merge: true, data.Calibration, data.HeldOut);
        var selection = new ReplacementAwareSelector(estimator).ChooseCuts(request);

        Assert.Equal([new BlockCut(2, 3)], selection.Cuts);
        Assert.Equal([1, 2, 3, 4, 5], selection.Scores.Keys.Order());
        double original = OriginalLoss(model, data.HeldOut);
        Assert.True(Math.Abs(selection.Scores[2] - original) < 1e-4 * original, $"exact repair must reproduce the original loss {original}: {Show(selection.Scores)}");
        foreach (var (start, loss) in selection.Scores)
            if (start != 2) Assert.True(loss > original + 1e-3, $"start {start}: {Show(selection.Scores)}");

        // One shared pass: every candidate's fit saw every real calibration token, padding excluded.
        long tokens = data.Calibration.Sum(b => b.TokenCount);
        Assert.Equal(5, estimator.Completed.Count);
        Assert.All(estimator.Completed, c => Assert.Equal(tokens, c.Tokens));
        Assert.Equal(Blocks, model.BlockCount);
        Assert.Equal(original, OriginalLoss(model, data.HeldOut), 12); // the model was not modified
    }

    [Fact]
    public void Plain_removal_scoring_prefers_the_small_nonlinear_block()
    {
        var (model, data) = fixture.OneLinearBlock;
        var request = DistanceSelectorTests.Request(model, data.Profile, 1, 1, merge: true, data.Calibration, data.HeldOut);
        var selection = new ReplacementAwareSelector(new IdentityTestEstimator()).ChooseCuts(request);
        Assert.Equal([new BlockCut(4, 5)], selection.Cuts);
        Assert.True(selection.Scores[2] > selection.Scores[4] + 1e-2, Show(selection.Scores));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Several_cuts_are_chosen_sequentially_on_the_repaired_model(bool merge)
    {
        var (model, data) = fixture.TwoLinearBlocks;
        double original = OriginalLoss(model, data.HeldOut);

        var twoSingles = new ReplacementAwareSelector(new PinvLeastSquaresTestEstimator()).ChooseCuts(
            DistanceSelectorTests.Request(model, data.Profile, 1, 2, merge, data.Calibration, data.HeldOut));
        Assert.Equal(merge ? [new BlockCut(2, 4)] : [new BlockCut(2, 3), new BlockCut(3, 4)], twoSingles.Cuts);
        Assert.Contains("then", twoSingles.Description, StringComparison.Ordinal);

        var onePair = new ReplacementAwareSelector(new PinvLeastSquaresTestEstimator()).ChooseCuts(
            DistanceSelectorTests.Request(model, data.Profile, 2, 1, merge, data.Calibration, data.HeldOut));
        Assert.Equal([new BlockCut(2, 4)], onePair.Cuts);
        Assert.True(Math.Abs(onePair.Scores[2] - original) < 1e-4 * original, Show(onePair.Scores));
    }

    [Fact]
    public void TopK_scores_only_the_best_candidates_by_distance_and_bad_input_is_rejected()
    {
        var (model, data) = fixture.OneLinearBlock;
        var request = DistanceSelectorTests.Request(model, data.Profile, 1, 1, merge: true, data.Calibration, data.HeldOut);
        var expected = Enumerable.Range(1, 5).OrderBy(s => data.Profile[s, 1]).Take(2).Order().ToArray();
        var selection = new ReplacementAwareSelector(new PinvLeastSquaresTestEstimator(), topK: 2).ChooseCuts(request);
        Assert.Equal(expected, selection.Scores.Keys.Order());

        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementAwareSelector(new IdentityTestEstimator(), topK: 0));
        var selector = new ReplacementAwareSelector(new IdentityTestEstimator());
        Assert.Contains("HeldOut", Assert.Throws<PruningException>(() => selector.ChooseCuts(request with { HeldOut = [] })).Message, StringComparison.Ordinal);
        Assert.Contains("Calibration", Assert.Throws<PruningException>(() => selector.ChooseCuts(request with { Calibration = [] })).Message, StringComparison.Ordinal);
        Assert.Throws<PruningException>(() => selector.ChooseCuts(request with { BlocksPerCut = Blocks }));
        using var single = Batch([[3]], PaddingSide.Right);
        Assert.Contains("next token", Assert.Throws<PruningException>(() => selector.ChooseCuts(request with { HeldOut = [single] })).Message, StringComparison.Ordinal);
    }
}
