using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// Healing on the real stories15M: plain removal of block 3, then a few Adam steps on block 2's down_proj against the
/// original model. Held-out perplexity is computed by the fixture's own formula (not the library's), on stories the
/// healing never saw; every tensor but the trained one is compared bit for bit.
/// </summary>
public class HealingTests(ITestOutputHelper output)
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Healing_lowers_held_out_perplexity_and_changes_only_the_fold_blocks_down_proj()
    {
        using var student = DecoderModel.FromPretrained(Fixture.ModelDir);
        var batches = PipelineFixtures.Batches(Fixture.CalibrationIds.Take(32).ToList(), 4);
        try
        {
            var options = new PruningOptions { Selector = new FixedCutSelector(3, 1), Estimator = new IdentityEstimator(), BlocksPerCut = 1 };
            using var pruned = new ReplaceMePruner().Prune(student, batches, options);
            double before = Stories15MTestModel.Perplexity(student, Fixture.HeldOutIds);
            var snapshot = student.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var progress = new List<PruningProgress>();
            var healing = TransformHealer.Heal(pruned, Fixture.Model, batches,
                new HealingOptions { Steps = 12, LearningRate = 2e-3, Seed = 3 }, new SynchronousProgress(progress));
            double after = Stories15MTestModel.Perplexity(student, Fixture.HeldOutIds);
            output.WriteLine($"healing {healing.Elapsed.TotalSeconds:F1} s; held-out perplexity {before:F3} -> {after:F3} (original {Fixture.OriginalPerplexity:F3}); KL curve {string.Join(" ", healing.LossCurve.Select(l => l.ToString("F3")))}");

            Assert.Equal([2], healing.Blocks);
            Assert.Equal(12, healing.LossCurve.Count);
            Assert.Equal(12, progress.Count(p => p.Stage == "heal"));
            Assert.True(after < 0.95 * before, $"healing should lower held-out perplexity clearly: {before:F3} -> {after:F3}");
            Assert.True(after > Fixture.OriginalPerplexity);
            const string trained = "model.layers.2.mlp.down_proj.weight";
            foreach (var (name, tensor) in student.state_dict())
            {
                bool same = tensor.equal(snapshot[name]).all().item<bool>();
                Assert.True(name == trained ? !same : same, $"{name}: {(same ? "unchanged" : "changed")}");
                Assert.False(tensor.requires_grad, $"{name} still requires grad");
            }
            foreach (var t in snapshot.Values) t.Dispose();
        }
        finally { PipelineFixtures.DisposeAll(batches); }
    }

    [Fact]
    public void Schedule_warms_up_linearly_then_decays_along_a_cosine_to_zero()
    {
        var o = new HealingOptions { Steps = 10, LearningRate = 1e-3, WarmupFraction = 0.2 };
        // warm-up steps 0, 1 (⌈0.2·10⌉ = 2): lr·1/2, lr·2/2; then cosine over steps 2..9: lr·(1 + cos(π·k/7))/2.
        Assert.Equal(5e-4, o.LearningRateAt(0), 15);
        Assert.Equal(1e-3, o.LearningRateAt(1), 15);
        Assert.Equal(1e-3, o.LearningRateAt(2), 15);
        Assert.Equal(1e-3 * (1 + Math.Cos(Math.PI * 3 / 7)) / 2, o.LearningRateAt(5), 15);
        Assert.Equal(0, o.LearningRateAt(9), 15);
        Assert.Throws<ArgumentException>(() => (o with { WarmupFraction = 1 }).Validate());
        Assert.Throws<ArgumentException>(() => (o with { LearningRate = double.NaN }).Validate());
    }

    [Fact]
    public void The_pruned_model_cannot_be_its_own_teacher_and_blocks_must_exist()
    {
        var model = Fixture.Model;
        var batches = PipelineFixtures.Batches([[1, 2, 3]], 1);
        try
        {
            Assert.Throws<ArgumentException>(() => TransformHealer.Heal(model, model, [1], batches, new HealingOptions()));
            using var other = DecoderModel.FromPretrained(Fixture.ModelDir);
            var e = Assert.Throws<ArgumentException>(() => TransformHealer.Heal(other, model, [model.BlockCount], batches, new HealingOptions()));
            Assert.Contains($"Block {model.BlockCount}", e.Message);
        }
        finally { PipelineFixtures.DisposeAll(batches); }
    }

    private sealed class SynchronousProgress(List<PruningProgress> sink) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => sink.Add(value);
    }
}
