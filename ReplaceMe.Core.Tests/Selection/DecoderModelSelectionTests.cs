using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tests.Modeling;
using ReplaceMe.Core.Tokenizers;
using static ReplaceMe.Core.Tests.Selection.SelectionFixtures;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Selection;

/// <summary>Selection on the library's real decoder (tiny random Llama), checked against captured states and real surgery.</summary>
public class DecoderModelSelectionTests
{
    private const int Layers = 5, Seed = 7;

    private static DecoderModel Model() => DecoderModel.Create(TinyModels.Llama(layers: Layers), seed: Seed);

    [Fact]
    public void Profile_on_the_decoder_equals_the_reference_with_left_padding()
    {
        using var model = Model();
        using var batch = Batch(Sequences(seed: 12, count: 4, minLength: 2, maxLength: 9, vocab: 50), PaddingSide.Left);
        var profile = new DistanceProfiler().Measure(model, [batch], Layers - 1);
        var states = States(model, batch);
        for (int n = 1; n < Layers; n++)
            for (int s = 1; s + n <= Layers; s++)
            {
                double expected = Reference(states, s, n, angular: true, lastToken: true);
                Assert.True(Math.Abs(expected - profile[s, n]) < 1e-7, $"[{s},{s + n}): expected {expected}, got {profile[s, n]}");
            }
    }

    [Fact]
    public void Replacement_aware_scores_equal_the_loss_of_the_really_pruned_model()
    {
        const int n = 2;
        using var model = Model();
        var sequences = Sequences(seed: 13, count: 24, minLength: 4, maxLength: 10, vocab: 50);
        List<TokenBatch> calibration = [Batch(sequences.Take(12), PaddingSide.Right), Batch(sequences.Skip(12), PaddingSide.Left)];
        List<TokenBatch> heldOut = [Batch(Sequences(seed: 14, count: 10, minLength: 3, maxLength: 8, vocab: 50), PaddingSide.Left)];
        try
        {
            var profile = new DistanceProfiler().Measure(model, calibration, n);
            var request = new SelectionRequest(model, profile, n, 1, true, calibration, heldOut, new EstimationContext());
            var selection = new ReplacementAwareSelector(new LeastSquaresEstimator()).ChooseCuts(request);
            Assert.Equal([1, 2, 3], selection.Scores.Keys.Order());
            Assert.Equal(selection.Scores.MinBy(kv => kv.Value).Key, selection.Cuts.Single().Start);

            foreach (var (start, score) in selection.Scores)
            {
                var cut = new BlockCut(start, start + n);
                using var transform = FitIndependently(model, cut, calibration);
                using var pruned = Model();
                var down = pruned.GetDownProjection(cut.FoldBlock).weight!;   // [d, d_ff]: M = h·Wᵀ, so M·T = h·(Tᵀ·W)ᵀ
                using (no_grad()) down.copy_(transform.t().matmul(down.to(ScalarType.Float64)).to(down.dtype));
                pruned.RemoveBlocks(cut.Start, cut.End);
                double expected = MeanNextTokenLoss(heldOut, b => pruned.Forward(b.InputIds, b.AttentionMask));
                Assert.True(Math.Abs(expected - score) < 1e-5 * expected, $"{cut}: pruned model {expected}, selector {score}");
            }
        }
        finally
        {
            calibration.ForEach(b => b.Dispose());
            heldOut.ForEach(b => b.Dispose());
        }
    }

    /// <summary>T for one cut from a full capture of its fold block and last removed block at real tokens.</summary>
    private static Tensor FitIndependently(DecoderModel model, BlockCut cut, IEnumerable<TokenBatch> batches)
    {
        using var fit = new LeastSquaresEstimator().Begin(cut, model.HiddenSize, new EstimationContext());
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            using var capture = new ActivationCapture([cut.FoldBlock, cut.End - 1]);
            using var state = model.Embed(batch.InputIds, batch.AttentionMask);
            model.RunBlocks(state, 0, cut.End, capture);
            var rows = nonzero(batch.AttentionMask.reshape(-1)).reshape(-1);
            Tensor Pick(Tensor t) => t.reshape(-1, t.shape[^1]).index_select(0, rows);
            var fold = capture[cut.FoldBlock];
            fit.Accumulate(Pick(fold.MlpOutput), Pick(fold.Output) - Pick(fold.MlpOutput), Pick(capture[cut.End - 1].Output));
        }
        return fit.Complete().Transform!.DetachFromDisposeScope();
    }
}
