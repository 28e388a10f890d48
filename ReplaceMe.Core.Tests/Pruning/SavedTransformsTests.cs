using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tests.Modeling;
using static ReplaceMe.Core.Tests.Pruning.PipelineFixtures;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>The saved T artifact: replaceme.json points to it, and T read back reproduces the fold from the original weights.</summary>
public class SavedTransformsTests
{
    public SavedTransformsTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Saved_T_times_original_down_proj_equals_the_pruned_down_proj_for_every_cut()
    {
        using var dir = TestPaths.NewTempDir();
        using var model = DecoderModel.Create(TinyModels.Llama(6), seed: 4);
        var originalDir = dir.Combine("original");
        model.SavePretrained(originalDir); // the original weights, read back independently below
        var batches = Batches(Sequences(24, 14, 50, 31), 4);
        using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions
        {
            BlocksPerCut = 1, CutCount = 2, MergeAdjacent = false, Selector = new AngularDistanceSelector(), Estimator = new LeastSquaresEstimator(),
        });
        var outDir = dir.Combine("pruned");
        result.Save(outDir);

        var prov = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
        Assert.Equal(SavedTransforms.FileName, (string)prov["transforms_file"]!);
        var loaded = SavedTransforms.Load(outDir);
        try
        {
            Assert.Equal(result.Cuts, loaded.Select(kv => kv.Key));
            using var original = SafetensorsReader.Open(originalDir);
            using var pruned = SafetensorsReader.Open(outDir);
            var removed = prov["removed"]!.AsArray();
            for (int i = 0; i < result.Outcomes.Count; i++)
            {
                var outcome = result.Outcomes[i];
                var (cut, t) = (loaded[i].Key, loaded[i].Value); // T: [d, d] float32
                Assert.Equal(ScalarType.Float32, t.dtype);
                Assert.Equal(SavedTransforms.TensorName(cut), (string)removed[i]!["transform_tensor"]!);
                using var scope = NewDisposeScope();
                var before = original.Read($"model.layers.{cut.FoldBlock}.mlp.down_proj.weight", ScalarType.Float64); // W: [d, ffn]
                var after = pruned.Read($"model.layers.{outcome.Applied.FoldBlock}.mlp.down_proj.weight", ScalarType.Float64); // [d, ffn]
                var refolded = t.to(ScalarType.Float64).t().mm(before); // Tᵀ·W
                double scale = before.abs().max().item<double>();
                Assert.True(MaxAbsDiff(refolded, after) < 1e-5 * scale, $"cut {cut}: |TᵀW − W'| = {MaxAbsDiff(refolded, after):G3}");
                // And the saved T is the fitted one (float32 rounding only).
                Assert.True(MaxAbsDiff(t, outcome.Transform!) < 1e-6 * outcome.Transform!.abs().max().item<double>());
            }
        }
        finally
        {
            foreach (var (_, t) in loaded) t.Dispose();
            DisposeAll(batches);
        }
    }

    [Fact]
    public void Plain_removal_writes_no_transforms_file_and_loading_it_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        using var model = DecoderModel.Create(TinyModels.Llama(4), seed: 5);
        var batches = Batches(Sequences(8, 10, 50, 32), 4);
        try
        {
            using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions { BlocksPerCut = 1, Estimator = new IdentityEstimator() });
            var outDir = dir.Combine("pruned");
            result.Save(outDir);
            Assert.False(File.Exists(Path.Combine(outDir, SavedTransforms.FileName)));
            var prov = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
            Assert.Null(prov["transforms_file"]);
            var error = Assert.Throws<CheckpointFormatException>(() => SavedTransforms.Load(outDir));
            Assert.Contains(SavedTransforms.FileName, error.Message);
        }
        finally { DisposeAll(batches); }
    }
}
