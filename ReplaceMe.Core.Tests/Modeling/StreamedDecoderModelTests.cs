using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tests.Pruning;
using ReplaceMe.Core.Tests.Surgery;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// The streamed model against the in-memory one on the same checkpoint: the same block outputs and logits, and the
/// same pruning (profile, cut, T, saved checkpoint) for each estimator/selector family, with one block ever allocated.
/// </summary>
public class StreamedDecoderModelTests
{
    public StreamedDecoderModelTests() => TorchRuntime.EnsureLoaded();

    private static List<TokenBatch> TinyBatches() => PipelineFixtures.Batches(PipelineFixtures.Sequences(30, 24, 50, seed: 3), 6);

    private static double RelativeDifference(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var x = a.to(ScalarType.Float64);
        var y = b.to(ScalarType.Float64);
        return (x - y).norm().item<double>() / Math.Max(1e-300, y.norm().item<double>());
    }

    [Fact]
    public void Blocks_and_chunked_head_equal_the_in_memory_model_with_one_block_allocated()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);                     // bf16, 6 blocks, sharded
        var batches = TinyBatches();
        try
        {
            using var memory = DecoderModel.FromPretrained(source);
            using var streamed = StreamedDecoderModel.Open(source);
            streamed.HeadChunkBytes = 7 * 32 * 4;                                    // 7 vocab rows per chunk: 8 chunks for 50
            foreach (var batch in batches.Take(2))
            {
                using var a = memory.Embed(batch.InputIds, batch.AttentionMask);
                using var b = streamed.Embed(batch.InputIds, batch.AttentionMask);
                Assert.True(a.Hidden.equal(b.Hidden).all().item<bool>());
                memory.RunBlocks(a, 0, memory.BlockCount);
                streamed.RunBlocks(b, 0, streamed.BlockCount);
                Assert.True(a.Hidden.equal(b.Hidden).all().item<bool>(), "block outputs must be bit-identical");
                using var la = memory.Head(a);
                using var lb = streamed.Head(b);
                Assert.Equal(la.shape, lb.shape);
                Assert.True(PipelineFixtures.MaxAbsDiff(la, lb) <= 1e-5, $"logits differ by {PipelineFixtures.MaxAbsDiff(la, lb)}");
            }
            Assert.Equal(1, streamed.PeakBlocksAllocated);
            Assert.Equal(2 * 6, streamed.BlockLoads);                                  // batch-major: every block per batch
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    public static TheoryData<string> Families => ["lstsq", "identity", "multicut", "replacement-aware", "cosine"];

    private static PruningOptions OptionsFor(string family) => family switch
    {
        "lstsq" => new PruningOptions { BlocksPerCut = 2 },
        "identity" => new PruningOptions { BlocksPerCut = 2, Estimator = new IdentityEstimator() },
        "multicut" => new PruningOptions { BlocksPerCut = 1, CutCount = 2, MergeAdjacent = false },
        "replacement-aware" => new PruningOptions { BlocksPerCut = 2, Selector = new ReplacementAwareSelector(new LeastSquaresEstimator()), HeldOutFraction = 0.34 },
        "cosine" => new PruningOptions
        {
            BlocksPerCut = 2, Seed = 5,
            Estimator = new CosineEstimator(new CosineOptions(LearningRate: 2e-2, BatchSize: 16, Epochs: 2) { Optimizer = CosineOptimizer.Adam, Schedule = CosineSchedule.Constant, MinSteps = 0, WarmupFraction = 0 }),
        },
        _ => throw new ArgumentOutOfRangeException(nameof(family)),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Pruning_streamed_gives_the_in_memory_profile_cuts_transforms_and_saved_model(string family)
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var batches = TinyBatches();
        try
        {
            var options = OptionsFor(family);
            using var memory = DecoderModel.FromPretrained(source);
            using var streamed = StreamedDecoderModel.Open(source);
            using var a = new ReplaceMePruner().Prune(memory, batches, options);
            using var b = new ReplaceMePruner().Prune(streamed, batches, options);

            for (int n = 1; n <= a.Profile.MaxLength; n++)
                Assert.Equal(a.Profile.ForLength(n), b.Profile.ForLength(n));       // exactly: same float32 blocks, same order
            Assert.Equal(a.Cuts, b.Cuts);
            Assert.Equal(memory.BlockCount, streamed.BlockCount);
            Assert.Equal(memory.Config.NumHiddenLayers, streamed.Config.NumHiddenLayers);
            for (int i = 0; i < a.Outcomes.Count; i++)
            {
                var (ta, tb) = (a.Outcomes[i].Transform, b.Outcomes[i].Transform);
                Assert.Equal(ta is null, tb is null);
                if (ta is not null) Assert.True(RelativeDifference(tb!, ta) <= 1e-5, $"T of {a.Outcomes[i].Cut} differs by {RelativeDifference(tb!, ta)}");
            }
            Assert.Equal(1, streamed.PeakBlocksAllocated);

            var outA = root.Combine("a");
            var outB = root.Combine("b");
            a.Save(outA);
            b.Save(outB);
            using (var saved = SafetensorsReader.Open(outB))
                Assert.Equal("BF16", saved.GetInfo("model.layers.0.mlp.down_proj.weight").DType);   // the bf16 source stays bf16
            using var loadedA = DecoderModel.FromPretrained(outA);
            using var loadedB = DecoderModel.FromPretrained(outB);
            var check = batches[0];
            using var la = loadedA.Forward(check.InputIds, check.AttentionMask);
            using var lb = loadedB.Forward(check.InputIds, check.AttentionMask);
            Assert.True(PipelineFixtures.MaxAbsDiff(la, lb) <= 1e-4, $"saved models' logits differ by {PipelineFixtures.MaxAbsDiff(la, lb)}");
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    [Fact]
    public void Stories15M_streamed_profile_cut_T_and_saved_perplexity_match_in_memory()
    {
        var shared = Stories15MTestModel.Shared;
        var ids = shared.CalibrationIds.Take(8).ToList();                           // ~500 tokens: LS needs ≥ d = 288
        var batches = PipelineFixtures.Batches(ids, 4);
        using var root = TestPaths.NewTempDir();
        try
        {
            var options = new PruningOptions { BlocksPerCut = 2 };
            using var memory = DecoderModel.FromPretrained(shared.ModelDir);
            using var streamed = StreamedDecoderModel.Open(shared.ModelDir);
            using var a = new ReplaceMePruner().Prune(memory, batches, options);
            using var b = new ReplaceMePruner().Prune(streamed, batches, options);
            for (int n = 1; n <= a.Profile.MaxLength; n++)
                Assert.Equal(a.Profile.ForLength(n), b.Profile.ForLength(n));
            Assert.Equal(a.Cuts, b.Cuts);
            Assert.True(RelativeDifference(b.Outcomes[0].Transform!, a.Outcomes[0].Transform!) <= 1e-5);
            a.Save(root.Combine("a"));
            b.Save(root.Combine("b"));
            using var loadedA = DecoderModel.FromPretrained(root.Combine("a"));
            using var loadedB = DecoderModel.FromPretrained(root.Combine("b"));
            double pa = Stories15MTestModel.Perplexity(loadedA, ids), pb = Stories15MTestModel.Perplexity(loadedB, ids);
            Assert.True(Math.Abs(pa - pb) <= 1e-5 * pa, $"perplexity {pa} in memory vs {pb} streamed");
            Assert.Equal(1, streamed.PeakBlocksAllocated);
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    [Fact]
    public void A_streamed_model_pruned_twice_cannot_be_saved_by_the_first_result()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var batches = TinyBatches();
        try
        {
            using var streamed = StreamedDecoderModel.Open(source);
            var options = new PruningOptions { BlocksPerCut = 1, Estimator = new IdentityEstimator() };
            using var first = new ReplaceMePruner().Prune(streamed, batches, options);
            using var second = new ReplaceMePruner().Prune(streamed, batches, options);
            var ex = Assert.Throws<UnsupportedModelException>(() => first.Save(root.Combine("out")));
            Assert.Contains("one prune", ex.Message, StringComparison.Ordinal);
            Assert.False(Directory.Exists(root.Combine("out")));
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    [Fact]
    public void Auto_residency_streams_when_the_weights_exceed_the_budget_share()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var config = ModelConfigJson.Load(Path.Combine(source, "config.json"));
        long weights = DecoderModel.WeightBytes(config, ScalarType.Float32);
        long justEnough = (long)Math.Ceiling(weights / TransformerLoader.InMemoryWeightShare);

        Assert.Equal(ModelResidency.InMemory, TransformerLoader.Choose(source, null, ModelResidency.Auto, justEnough + 1, out _));
        Assert.Equal(ModelResidency.Streamed, TransformerLoader.Choose(source, null, ModelResidency.Auto, justEnough - 2, out var reason));
        Assert.Contains("more than 60%", reason, StringComparison.Ordinal);
        Assert.Equal(ModelResidency.InMemory, TransformerLoader.Choose(source, null, ModelResidency.InMemory, 1, out _));
        using (var small = TransformerLoader.Load(source, maxMemoryBytes: weights) as IDisposable)
            Assert.IsType<StreamedDecoderModel>(small);
        using (var large = TransformerLoader.Load(source, maxMemoryBytes: 4 * weights) as IDisposable)
            Assert.IsType<DecoderModel>(large);
        using (var forced = TransformerLoader.Load(source, residency: ModelResidency.Streamed) as IDisposable)
            Assert.IsType<StreamedDecoderModel>(forced);
    }

    [Fact]
    public void Block_major_reads_each_block_once_per_pass_and_a_zero_budget_spills_with_the_same_results()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var spill = Directory.CreateDirectory(root.Combine("spill")).FullName;
        var batches = TinyBatches();
        try
        {
            var options = new PruningOptions { BlocksPerCut = 2 };
            using var memory = DecoderModel.FromPretrained(source);
            using var a = new ReplaceMePruner().Prune(memory, batches, options);

            using var memoryBlockMajor = DecoderModel.FromPretrained(source);        // the block-major driver on the in-memory model
            using var d = new ReplaceMePruner().Prune(memoryBlockMajor, batches, options with { BlockMajor = true });
            for (int n = 1; n <= a.Profile.MaxLength; n++) Assert.Equal(a.Profile.ForLength(n), d.Profile.ForLength(n));
            Assert.True(d.Outcomes[0].Transform!.equal(a.Outcomes[0].Transform!).all().item<bool>());

            using var inRam = StreamedDecoderModel.Open(source);
            using var b = new ReplaceMePruner().Prune(inRam, batches, options);
            Assert.Equal(6, inRam.BlockLoads);                       // one pass, each block once; the profile pass fed the fit

            using var spilled = StreamedDecoderModel.Open(source);
            var reports = new List<PruningProgress>();
            var progress = new SynchronousProgress(reports.Add);
            using var c = new ReplaceMePruner().Prune(spilled, batches,
                options with { HiddenStateBudgetBytes = 0, SpillDirectory = spill, StatisticsBudgetBytes = 0 }, progress);
            Assert.Equal(6 + c.Cuts[0].End, spilled.BlockLoads);     // profile pass, then the fit pass up to the cut's end
            foreach (var r in new[] { b, c })
            {
                for (int n = 1; n <= a.Profile.MaxLength; n++) Assert.Equal(a.Profile.ForLength(n), r.Profile.ForLength(n));
                Assert.Equal(a.Cuts, r.Cuts);
                Assert.True(RelativeDifference(r.Outcomes[0].Transform!, a.Outcomes[0].Transform!) <= 1e-5);
            }
            Assert.Contains(reports, p => p.Stage == "profile" && p.Message is { } m && m.StartsWith("block 3/6: calibration pass, ETA ", StringComparison.Ordinal));
            Assert.Contains(reports, p => p.Stage == "estimate" && p.Message is { } m && m.StartsWith("block 1/", StringComparison.Ordinal));
            Assert.Empty(Directory.EnumerateFileSystemEntries(spill));

            // Cancelled part-way through a spilling pass: nothing is left in the spill folder, the model is unchanged.
            using var cancelled = StreamedDecoderModel.Open(source);
            using var cts = new CancellationTokenSource();
            var cancelAt = new SynchronousProgress(p => { if (p.Message?.StartsWith("block 2/", StringComparison.Ordinal) == true) cts.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => new ReplaceMePruner().Prune(cancelled, batches,
                options with { HiddenStateBudgetBytes = 0, SpillDirectory = spill }, cancelAt, cancellationToken: cts.Token));
            Assert.Empty(Directory.EnumerateFileSystemEntries(spill));
            Assert.Equal(6, cancelled.BlockCount);
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    [Fact]
    public void Hidden_state_store_round_trips_spilled_states_exactly_leaves_no_file_and_checks_free_space()
    {
        using var root = TestPaths.NewTempDir();
        var folder = Directory.CreateDirectory(root.Combine("spill")).FullName;
        using var values = randn([2, 5, 8], generator: new TorchSharp.torch.Generator(3));
        using (var store = new HiddenStateStore(values.numel() * 4, folder))
        {
            store.Put(0, values.clone());                            // fits the budget: stays in RAM
            store.Put(1, values.mul(values));                        // over it: spilled
            Assert.Equal(values.numel() * 4, store.RamBytes);
            Assert.Equal(values.numel() * 4, store.SpilledBytes);
            if (!OperatingSystem.IsWindows()) Assert.False(File.Exists(store.SpillPath));   // unlinked while open
            using var back0 = store.Take(0);
            using var back1 = store.Take(1);
            Assert.True(back0.equal(values).all().item<bool>());
            using var square = values.mul(values);
            Assert.True(back1.equal(square).all().item<bool>());
            var ex = Assert.Throws<InsufficientDiskSpaceException>(() => store.CheckSpace(long.MaxValue / 2, 4));
            Assert.Contains(folder, ex.Message, StringComparison.Ordinal);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
    }

    private sealed class SynchronousProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }
}
