using System.Text.Json.Nodes;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// Healing is recorded in replaceme.json: settings, schedule, the held-out split and the held-out KL and perplexity
/// before and after, the perplexities checked against the fixture's own formula on the same stories.
/// </summary>
public class HealingProvenanceTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Healing_with_held_out_batches_is_written_to_replaceme_json()
    {
        using var student = DecoderModel.FromPretrained(Fixture.ModelDir);
        var trainIds = Fixture.CalibrationIds.Take(8).ToList();
        var heldIds = Fixture.CalibrationIds.Skip(8).Take(8).ToList();
        var train = PipelineFixtures.Batches(trainIds, 4);
        var held = PipelineFixtures.Batches(heldIds, 4);
        try
        {
            var options = new PruningOptions { Selector = new FixedCutSelector(3, 1), Estimator = new IdentityEstimator(), BlocksPerCut = 1 };
            using var pruned = new ReplaceMePruner().Prune(student, train, options);
            Assert.Null(JsonNode.Parse(pruned.ProvenanceJson())!["healing"]);              // nothing before healing
            double before = Stories15MTestModel.Perplexity(student, heldIds);

            var healing = TransformHealer.Heal(pruned, Fixture.Model, train, held, new HealingOptions { Steps = 3, LearningRate = 2e-3, Seed = 1 });
            double after = Stories15MTestModel.Perplexity(student, heldIds);

            var entry = JsonNode.Parse(pruned.ProvenanceJson())!["healing"]!.AsArray().Single()!;
            Assert.Equal(3, (int)entry["steps"]!);
            Assert.Equal(2e-3, (double)entry["learning_rate"]!);
            Assert.Equal(0.1, (double)entry["warmup_fraction"]!);
            Assert.Equal("linear warm-up, cosine decay to 0", (string)entry["schedule"]!);
            Assert.Equal("model.layers.2.mlp.down_proj", (string)entry["trained"]![0]!);
            Assert.Equal(3, entry["loss_curve"]!.AsArray().Count);
            var h = entry["held_out"]!;
            Assert.Equal(2, (int)h["batches"]!);
            Assert.Equal(8, (int)h["sequences"]!);
            Assert.Equal(2, (int)h["training_batches"]!);
            Assert.Equal(8, (int)h["training_sequences"]!);
            Assert.Equal(CalibrationBatches.Fingerprint(held), (string)h["sha256_token_ids"]!);
            Assert.Equal(before, (double)h["perplexity_before"]!, 4);                      // the fixture's formula, same stories
            Assert.Equal(after, (double)h["perplexity_after"]!, 4);
            Assert.Equal(Stories15MTestModel.Perplexity(Fixture.Model, heldIds), (double)h["original_perplexity"]!, 4);
            Assert.True((double)h["kl_after"]! < (double)h["kl_before"]!, $"KL {h["kl_before"]} -> {h["kl_after"]}");
            Assert.Equal(healing.HeldOut!.After.MeanKl, (double)h["kl_after"]!);

            // The saved folder carries the same record.
            using var dir = TestPaths.NewTempDir();
            var outDir = dir.Combine("healed");
            pruned.Save(outDir);
            var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
            Assert.Equal((double)h["kl_after"]!, (double)saved["healing"]![0]!["held_out"]!["kl_after"]!);
        }
        finally
        {
            PipelineFixtures.DisposeAll(train);
            PipelineFixtures.DisposeAll(held);
        }
    }

    [Fact]
    public void Held_out_batches_must_not_be_training_batches_and_healing_without_them_has_no_scores()
    {
        using var student = DecoderModel.FromPretrained(Fixture.ModelDir);
        var train = PipelineFixtures.Batches(Fixture.CalibrationIds.Take(4).ToList(), 2);
        try
        {
            var options = new PruningOptions { Selector = new FixedCutSelector(3, 1), Estimator = new IdentityEstimator(), BlocksPerCut = 1 };
            using var pruned = new ReplaceMePruner().Prune(student, train, options);
            var overlap = Assert.Throws<ArgumentException>(() => TransformHealer.Heal(pruned, Fixture.Model, train, [train[1]], new HealingOptions { Steps = 1 }));
            Assert.Contains("also training batches", overlap.Message);
            Assert.Throws<ArgumentException>(() => TransformHealer.Heal(pruned, Fixture.Model, train, [], new HealingOptions { Steps = 1 }));
            Assert.Empty(pruned.Healing);

            TransformHealer.Heal(pruned, Fixture.Model, train, new HealingOptions { Steps = 1, LearningRate = 1e-3 });
            var entry = JsonNode.Parse(pruned.ProvenanceJson())!["healing"]!.AsArray().Single()!;
            Assert.Equal(1, (int)entry["steps"]!);
            Assert.Null(entry["held_out"]);
        }
        finally { PipelineFixtures.DisposeAll(train); }
    }
}
