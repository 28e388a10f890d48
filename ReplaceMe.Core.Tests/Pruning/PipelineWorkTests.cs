using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tests.Modeling;
using ReplaceMe.Core.Tokenizers;
using static ReplaceMe.Core.Tests.Pruning.PipelineFixtures;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// How much forward work a prune does (PruningResult.ForwardEquivalents, derived here by hand from the block ranges
/// each stage must run), that the one-pass fit gives the two-pass T, and that a failed or cancelled multi-cut run
/// leaves the caller's model bit-for-bit unchanged.
/// </summary>
public class PipelineWorkTests
{
    private const int Layers = 6;

    public PipelineWorkTests() => TorchRuntime.EnsureLoaded();

    private static DecoderModel NewModel() => DecoderModel.Create(TinyModels.Llama(Layers), seed: 5);

    private static double RelativeDifference(Tensor a, Tensor b) =>
        MaxAbsDiff(a, b) / b.abs().max().to(ScalarType.Float64).item<double>();

    [Fact]
    public void Angular_least_squares_fits_the_first_cut_in_the_profile_pass_with_the_two_pass_T()
    {
        var batches = Batches(Sequences(24, 12, 50, 31), 6);
        using var onePassModel = NewModel();
        using var twoPassModel = NewModel();
        var options = new PruningOptions { BlocksPerCut = 2, CutCount = 2, MergeAdjacent = false };
        using var onePass = new ReplaceMePruner().Prune(onePassModel, batches, options);
        using var twoPass = new ReplaceMePruner().Prune(twoPassModel, batches, options with { StatisticsBudgetBytes = 0 });

        Assert.Equal(twoPass.Cuts, onePass.Cuts);
        var first = onePass.Outcomes[0].Applied;
        var second = onePass.Outcomes[1].Applied;
        // One pass: the profile (all 6 blocks) fed the first cut; the second cut, which depends on the first surgery,
        // runs its own pass up to its end on the pruned model. Two passes: each cut runs up to its end.
        Assert.Equal(1.0 + second.End / (double)Layers, onePass.ForwardEquivalents, 12);
        Assert.Equal(1.0 + (first.End + second.End) / (double)Layers, twoPass.ForwardEquivalents, 12);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(twoPass.Outcomes[i].Report.Tokens, onePass.Outcomes[i].Report.Tokens);
            Assert.True(RelativeDifference(onePass.Outcomes[i].Transform!, twoPass.Outcomes[i].Transform!) < 1e-6);
        }
        DisposeAll(batches);
    }

    [Fact]
    public void Replacement_aware_selection_reuses_the_profile_pass_fits_and_its_solved_T()
    {
        var batches = Batches(Sequences(30, 10, 50, 32), 6);            // 5 batches; the last one held out
        using var onePassModel = NewModel();
        using var twoPassModel = NewModel();
        const int n = 2;
        var options = new PruningOptions { BlocksPerCut = n, Selector = new ReplacementAwareSelector(), HeldOutFraction = 0.2 };
        using var onePass = new ReplaceMePruner().Prune(onePassModel, batches, options);
        using var twoPass = new ReplaceMePruner().Prune(twoPassModel, batches, options with { StatisticsBudgetBytes = 0 });

        double all = batches.Sum(b => (double)b.InputIds.shape[0] * b.InputIds.shape[1]);
        double fit = batches.Take(4).Sum(b => (double)b.InputIds.shape[0] * b.InputIds.shape[1]);
        double held = all - fit;
        // Held-out scoring: the model up to the last fold block (L − n blocks), then per candidate s the blocks after its cut.
        double scoring = Layers - n + Enumerable.Range(1, Layers - n).Sum(s => Layers - s - n);
        Assert.Equal((Layers * fit + scoring * held) / (Layers * all), onePass.ForwardEquivalents, 12);
        // Without the budget the selector fits its candidates in a pass of its own, and still no cut is re-fitted.
        Assert.Equal((2 * Layers * fit + scoring * held) / (Layers * all), twoPass.ForwardEquivalents, 12);
        Assert.Equal(twoPass.Cuts, onePass.Cuts);
        Assert.True(RelativeDifference(onePass.Outcomes[0].Transform!, twoPass.Outcomes[0].Transform!) < 1e-6);

        // The reused T is the T a separate fit on the original model gives.
        using var reference = NewModel();
        var cut = onePass.Cuts[0];
        var separate = CutFitter.Fit(reference, cut, cut, new LeastSquaresEstimator(), batches.Take(4).ToList(), new EstimationContext(), null, default);
        Assert.True(RelativeDifference(onePass.Outcomes[0].Transform!, separate.Transform!) < 1e-6);
        separate.Transform!.Dispose();
        DisposeAll(batches);
    }

    [Fact]
    public void A_cancellation_between_two_cuts_leaves_the_model_bit_identical()
    {
        using var model = NewModel();
        var before = Snapshot(model);
        var batches = Batches(Sequences(18, 9, 50, 33), 6);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Stage == "surgery" && p.Fraction == 1.0) cts.Cancel(); }); // after cut 1 is folded
        var options = new PruningOptions
        {
            BlocksPerCut = 1, CutCount = 2, MergeAdjacent = false,
            Selector = new FixedCutSelector([new BlockCut(1, 2), new BlockCut(3, 5)]),
        };
        Assert.ThrowsAny<OperationCanceledException>(() => new ReplaceMePruner().Prune(model, batches, options, progress, null, cts.Token));
        AssertUnchanged(model, before);

        // A failure in the second cut's fit (after the first cut's T went into block 0's weights) is undone the same way.
        var failing = options with { Estimator = new FailOnSecondCut() };
        var error = Assert.Throws<PruningException>(() => new ReplaceMePruner().Prune(model, batches, failing));
        Assert.Contains("second cut", error.Message);
        AssertUnchanged(model, before);

        // And the same run without interruption prunes the model.
        using var result = new ReplaceMePruner().Prune(model, batches, options);
        Assert.Equal(Layers - 3, model.BlockCount);
        Assert.Equal(Layers - 3, model.Config.NumHiddenLayers);
        foreach (var t in before.Values) t.Dispose();
        DisposeAll(batches);
    }

    [Fact]
    public void Threads_are_set_for_a_run_and_restored()
    {
        int original = TorchThreads.Current;
        using (var scope = TorchThreads.Use(1))
        {
            Assert.Equal(1, TorchThreads.Current);
            Assert.Equal(original, scope.Previous);
        }
        Assert.Equal(original, TorchThreads.Current);
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchThreads.Use(0));

        int seen = -1;
        using var model = NewModel();
        var batches = Batches(Sequences(6, 8, 50, 34), 6);
        var progress = new SyncProgress(_ => seen = TorchThreads.Current);
        using var result = new ReplaceMePruner().Prune(model, batches,
            new PruningOptions { BlocksPerCut = 1, Threads = 1, Estimator = new IdentityEstimator() }, progress);
        Assert.Equal(1, seen);
        Assert.Equal(original, TorchThreads.Current);
        Assert.Throws<ArgumentException>(() => new PruningOptions { BlocksPerCut = 1, Threads = 0 }.ResolveBlocksPerCut(Layers));
        DisposeAll(batches);
    }

    private static Dictionary<string, Tensor> Snapshot(DecoderModel model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static void AssertUnchanged(DecoderModel model, Dictionary<string, Tensor> before)
    {
        Assert.Equal(Layers, model.BlockCount);
        Assert.Equal(Layers, model.Config.NumHiddenLayers);
        var now = model.state_dict();
        Assert.Equal(before.Keys.Order(), now.Keys.Order());
        foreach (var (name, tensor) in before)
            Assert.True(tensor.bytes.ToArray().AsSpan().SequenceEqual(now[name].contiguous().bytes.ToArray()), $"{name} changed");
    }

    /// <summary>Least squares that refuses to start a second cut.</summary>
    private sealed class FailOnSecondCut : ITransformEstimator
    {
        private readonly LeastSquaresEstimator _inner = new();
        private int _begun;
        public string Name => "fail-on-second";

        public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context) =>
            ++_begun == 2 ? throw new PruningException("refusing the second cut") : _inner.Begin(cut, hiddenSize, context);
    }
}
