using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tests.Surgery;
using static ReplaceMe.Core.Tests.Pruning.PipelineFixtures;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

public class ReplaceMePrunerTests
{
    public ReplaceMePrunerTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Cut_of_identity_blocks_gets_T_equal_identity_and_unchanged_logits()
    {
        using var model = new ToyAdapter(blocks: 6, d: 8, dff: 16, vocab: 40, seed: 11, downBias: true);
        model.MakeIdentity(3);
        model.MakeIdentity(4);
        var batches = Batches(Sequences(24, 9, 40, 1), 5);
        var probe = Batches(Sequences(4, 7, 40, 2), 4)[0];
        var before = model.Logits(probe.InputIds, probe.AttentionMask);

        using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions { BlocksPerCut = 2, Selector = new FixedCutSelector(3, 2) });

        Assert.Equal([new BlockCut(3, 5)], result.Cuts);
        Assert.Equal(4, model.BlockCount);
        var t = result.Outcomes[0].Transform!;
        Assert.True(MaxAbsDiff(t, eye(8, dtype: ScalarType.Float64)) < 1e-6);
        Assert.True(MaxAbsDiff(before, model.Logits(probe.InputIds, probe.AttentionMask)) < 1e-5);
        Assert.Equal(batches.Sum(b => b.TokenCount), result.Outcomes[0].Report.Tokens);
        DisposeAll(batches);
        probe.Dispose();
    }

    [Fact]
    public void Several_cuts_are_estimated_one_after_another_on_the_pruned_model_with_shifted_indices()
    {
        using var model = new ToyAdapter(blocks: 8, d: 8, dff: 16, vocab: 40, seed: 12);
        model.MakeIdentity(4);
        model.MakeIdentity(5);
        var batches = Batches(Sequences(24, 9, 40, 3), 6);
        var surgeon = new RecordingSurgeon();
        var options = new PruningOptions
        {
            BlocksPerCut = 1, CutCount = 2, MergeAdjacent = false,
            Selector = new FixedCutSelector([new BlockCut(4, 6), new BlockCut(1, 2)]),
        };

        using var result = new ReplaceMePruner(surgeon).Prune(model, batches, options);

        Assert.Equal([new BlockCut(1, 2), new BlockCut(4, 6)], result.Cuts);           // original indices
        Assert.Equal([new BlockCut(1, 2), new BlockCut(3, 5)], surgeon.Applied);        // shifted by the first cut
        Assert.Equal(surgeon.Applied, result.Outcomes.Select(o => o.Applied));
        Assert.Equal(5, model.BlockCount);
        // The second fit ran on the pruned model: there [3, 5) are the original identity blocks 4 and 5, so T = I
        // and the residual is zero. Without the shift it would have fitted original blocks 5 and 6 (not linear).
        Assert.True(result.Outcomes[1].Report.RelativeResidual < 1e-6);
        Assert.True(MaxAbsDiff(result.Outcomes[1].Transform!, eye(8, dtype: ScalarType.Float64)) < 1e-6);
        Assert.True(result.Outcomes[0].Report.RelativeResidual > 1e-3);
        DisposeAll(batches);
    }

    [Fact]
    public void Distance_selector_result_carries_profile_scores_and_timings()
    {
        using var model = new ToyAdapter(blocks: 6, d: 8, dff: 16, vocab: 40, seed: 13);
        var batches = Batches(Sequences(20, 9, 40, 4), 5);
        var progress = new List<PruningProgress>();
        using var result = new ReplaceMePruner().Prune(model, batches,
            new PruningOptions { BlocksPerCut = 2, MaxDistanceLength = 3, CalibrationSource = "random ids" },
            new SyncProgress(progress.Add));

        Assert.Equal(3, result.Profile.MaxLength);
        var cut = Assert.Single(result.Cuts);
        Assert.Equal(2, cut.Length);
        // The distance selector picks the start with the smallest distance for n = 2.
        var row = result.Profile.ForLength(2);
        int best = Enumerable.Range(1, 4).MinBy(s => row[s - 1]);
        Assert.Equal(best, cut.Start);
        Assert.Equal("angular", result.SelectorName);
        Assert.Equal("lstsq", result.EstimatorName);
        foreach (var stage in new[] { "profile", "select", "estimate", "surgery", "total" }) Assert.True(result.Timings.ContainsKey(stage));
        Assert.True(result.PeakWorkingSetBytes > 0);
        Assert.Contains(progress, p => p.Stage == "estimate");
        Assert.Contains(progress, p => p.Stage == "surgery");
        Assert.Equal(64, result.Calibration.Fingerprint.Length);
        var json = System.Text.Json.Nodes.JsonNode.Parse(result.ProvenanceJson())!;
        Assert.Equal(cut.Start, (int)json["removed"]![0]!["start"]!);
        Assert.Equal("random ids", (string)json["calibration"]!["source"]!);
        DisposeAll(batches);
    }

    [Fact]
    public void A_cosine_budget_below_the_LBFGS_minimum_is_refused_before_the_first_pass()
    {
        using var model = new ToyAdapter(blocks: 6, d: 8, dff: 16, vocab: 40, seed: 13);
        var batches = Batches(Sequences(12, 9, 40, 4), 4);
        var probe = Batches(Sequences(4, 7, 40, 5), 4)[0];
        var before = model.Logits(probe.InputIds, probe.AttentionMask);
        var stages = new List<string>();
        var options = new PruningOptions { BlocksPerCut = 1, Estimator = new CosineEstimator(new CosineOptions()), MemoryBudgetBytes = 1000 };

        var ex = Assert.Throws<InsufficientMemoryBudgetException>(() =>
            new ReplaceMePruner().Prune(model, batches, options, new Recorder(p => stages.Add(p.Stage))));

        Assert.Equal(1000, ex.BudgetBytes);
        Assert.True(ex.RequiredBytes > 1000);
        Assert.Empty(stages);                                   // no pass started
        Assert.Equal(6, model.BlockCount);
        Assert.Equal(0, MaxAbsDiff(before, model.Logits(probe.InputIds, probe.AttentionMask)));
        DisposeAll(batches);
        probe.Dispose();
    }

    private sealed class Recorder(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }

    [Fact]
    public void Bad_requests_are_refused_with_clear_errors()
    {
        using var model = new ToyAdapter(blocks: 4, d: 8, dff: 16, vocab: 40, seed: 14);
        var batches = Batches(Sequences(8, 6, 40, 5), 4);
        var pruner = new ReplaceMePruner();
        var ex = Assert.Throws<PruningException>(() => pruner.Prune(model, batches, new PruningOptions { BlocksPerCut = 4 }));
        Assert.Contains("4 blocks", ex.Message);
        ex = Assert.Throws<PruningException>(() => pruner.Prune(model, batches, new PruningOptions { BlocksPerCut = 1, Selector = new FixedCutSelector(0, 1) }));
        Assert.Contains("block 0", ex.Message);
        ex = Assert.Throws<PruningException>(() => pruner.Prune(model, [], new PruningOptions { BlocksPerCut = 1 }));
        Assert.Contains("empty", ex.Message);
        Assert.Throws<ArgumentException>(() => pruner.Prune(model, batches, new PruningOptions { BlocksPerCut = 1, TargetFraction = 0.25 }));
        Assert.Throws<ArgumentException>(() => pruner.Prune(model, batches, new PruningOptions()));
        ex = Assert.Throws<PruningException>(() => pruner.Prune(model, batches, new PruningOptions { BlocksPerCut = 1, Selector = new ReplacementAwareSelector(), HeldOutFraction = 0 }));
        Assert.Contains("held-out", ex.Message);
        // Least squares needs at least d valid tokens.
        var tiny = Batches([[1, 2], [3]], 2);
        Assert.Throws<PruningException>(() => pruner.Prune(model, tiny, new PruningOptions { BlocksPerCut = 1, Selector = new FixedCutSelector(1, 1) }));
        Assert.Equal(4, model.BlockCount);
        DisposeAll(batches);
        DisposeAll(tiny);
    }

    [Fact]
    public void Target_fraction_resolves_n()
    {
        Assert.Equal(8, new PruningOptions { TargetFraction = 0.25 }.ResolveBlocksPerCut(32));
        Assert.Equal(4, new PruningOptions { TargetFraction = 0.25, CutCount = 2 }.ResolveBlocksPerCut(32));
        Assert.Equal(1, new PruningOptions { TargetFraction = 0.01 }.ResolveBlocksPerCut(6));
        Assert.Throws<PruningException>(() => new PruningOptions { BlocksPerCut = 2, CutCount = 3 }.ResolveBlocksPerCut(6));
    }

    [Fact]
    public void Non_finite_activations_name_the_block()
    {
        using var model = new ToyAdapter(blocks: 5, d: 8, dff: 16, vocab: 40, seed: 15);
        using (no_grad()) model.GetDownProjection(1).weight![0, 0] = tensor(double.PositiveInfinity, ScalarType.Float64);
        var batches = Batches(Sequences(8, 6, 40, 6), 4);
        var ex = Assert.Throws<PruningException>(() => new ReplaceMePruner().Prune(model, batches,
            new PruningOptions { BlocksPerCut = 1, Selector = new FixedCutSelector(2, 1) }));
        Assert.Contains("block 1", ex.Message);
        DisposeAll(batches);
    }

    [Fact]
    public void Cancellation_between_batches_stops_the_run()
    {
        using var model = new ToyAdapter(blocks: 5, d: 8, dff: 16, vocab: 40, seed: 16);
        var batches = Batches(Sequences(30, 6, 40, 7), 3);
        using var cts = new CancellationTokenSource();
        int estimateReports = 0;
        var progress = new SyncProgress(p => { if (p.Stage == "estimate" && ++estimateReports == 2) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new ReplaceMePruner().Prune(model, batches,
            new PruningOptions { BlocksPerCut = 1, Selector = new FixedCutSelector(2, 1) }, progress, null, cts.Token));
        Assert.Equal(2, estimateReports);
        Assert.Equal(5, model.BlockCount);
        DisposeAll(batches);
    }
}

public class StrategyInstanceTests
{
    public StrategyInstanceTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A third-party selector that scores on held-out data and asks for a 1 − cos profile.</summary>
    private sealed class HeldOutProbe : ILayerSelector
    {
        public int HeldOutBatches { get; private set; } = -1;
        public DistanceMetric SeenMetric { get; private set; }
        public string Name => "probe";
        public bool NeedsHeldOut => true;
        public DistanceMetric ProfileMetric => DistanceMetric.Cosine;
        public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?> { ["answer"] = 42 };

        public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
        {
            HeldOutBatches = request.HeldOut.Count;
            SeenMetric = request.Profile.Metric;
            return new LayerSelection([new BlockCut(2, 3)], new Dictionary<int, double>(), "probe");
        }
    }

    [Fact]
    public void A_third_party_selector_declares_held_out_data_its_profile_metric_and_its_settings()
    {
        using var model = new ToyAdapter(blocks: 5, d: 8, dff: 16, vocab: 40, seed: 21);
        var batches = Batches(Sequences(40, 6, 40, 8), 5);                 // 8 batches
        var probe = new HeldOutProbe();
        var options = new PruningOptions
        {
            BlocksPerCut = 1, Selector = probe, HeldOutFraction = 0.25,
            Estimator = new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: 0.5)),
        };
        using var result = new ReplaceMePruner().Prune(model, batches, options);
        Assert.Equal(2, probe.HeldOutBatches);                               // the last quarter of 8 batches
        Assert.Equal(DistanceMetric.Cosine, probe.SeenMetric);
        var json = System.Text.Json.Nodes.JsonNode.Parse(result.ProvenanceJson())!;
        Assert.Equal(42, (int)json["selector"]!["settings"]!["answer"]!);
        Assert.Equal("lstsq", (string)json["estimator"]!["name"]!);
        Assert.Equal(0.5, (double)json["estimator"]!["settings"]!["ridge"]!);
        Assert.Equal("Cosine", (string)json["options"]!["distance_metric"]!);
        DisposeAll(batches);
    }
}

/// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
{
    public void Report(PruningProgress value) => report(value);
}
