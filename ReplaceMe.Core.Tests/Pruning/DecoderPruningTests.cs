using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
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

/// <summary>Pipeline behaviour on the library's own decoder (random weights, causal attention, padding).</summary>
public class DecoderPruningTests
{
    public DecoderPruningTests() => TorchRuntime.EnsureLoaded();

    private static DecoderModel NewModel(int layers = 5, int seed = 3) => DecoderModel.Create(TinyModels.Llama(layers), seed: seed);

    [Fact]
    public void Statistics_and_T_do_not_depend_on_padding_side_or_batching()
    {
        using var model = NewModel();
        var sequences = Sequences(16, 14, 50, 21);
        var cut = new BlockCut(2, 4);
        var estimator = new LeastSquaresEstimator();
        TransformEstimate Fit(List<TokenBatch> batches)
        {
            try { return CutFitter.Fit(model, cut, cut, estimator, batches, new EstimationContext(), null, default); }
            finally { DisposeAll(batches); }
        }
        var right = Fit(Batches(sequences, 5, PaddingSide.Right));
        var left = Fit(Batches(sequences, 5, PaddingSide.Left));
        var single = Fit(Batches(sequences, 1));

        long tokens = sequences.Sum(s => (long)s.Count);
        foreach (var e in new[] { right, left, single })
        {
            Assert.Equal(tokens, e.Report.Tokens);
            Assert.Equal(right.Report.RelativeResidual!.Value, e.Report.RelativeResidual!.Value, 1e-5);
        }
        // Padding only changes float32 summation order inside the forward, never which rows enter the fit.
        double scale = right.Transform!.abs().max().item<double>();
        Assert.True(MaxAbsDiff(right.Transform!, left.Transform!) < 1e-4 * scale);
        Assert.True(MaxAbsDiff(right.Transform!, single.Transform!) < 1e-4 * scale);
    }

    [Fact]
    public void Pruned_state_after_the_fold_block_is_Y_plus_X_times_T()
    {
        using var model = NewModel();
        var probe = Batches(Sequences(3, 10, 50, 22), 3, PaddingSide.Left)[0];
        using var capture = new ActivationCapture([1]);
        using (var s = model.Embed(probe.InputIds, probe.AttentionMask)) model.RunBlocks(s, 0, 2, capture);
        var x = capture[1].MlpOutput.to(ScalarType.Float64);             // [B, T, d]
        var y = capture[1].AttentionResidual().to(ScalarType.Float64);   // [B, T, d]

        var batches = Batches(Sequences(20, 14, 50, 23), 4);
        using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions { BlocksPerCut = 2, Selector = new FixedCutSelector(2, 2) });
        var t = result.Outcomes[0].Transform!;                          // [d, d] float64
        var expected = y + x.matmul(t);

        using var after = model.Embed(probe.InputIds, probe.AttentionMask);
        model.RunBlocks(after, 0, 2);
        var got = after.Hidden.to(ScalarType.Float64);
        var valid = probe.AttentionMask.to(ScalarType.Bool).unsqueeze(-1);
        var diff = (got - expected).abs().masked_fill(valid.logical_not(), 0).max().item<double>();
        Assert.True(diff < 1e-4 * expected.abs().max().item<double>(), $"max diff {diff}");
        Assert.Equal(3, model.BlockCount);
        DisposeAll(batches);
        probe.Dispose();
    }

    [Fact]
    public void Saved_folder_reloads_with_same_logits_contiguous_keys_and_provenance()
    {
        using var dir = TestPaths.NewTempDir();
        using var model = NewModel(layers: 6);
        var batches = Batches(Sequences(20, 14, 50, 24), 4);
        using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions
        {
            BlocksPerCut = 1, CutCount = 2, MergeAdjacent = false, Selector = new AngularDistanceSelector(), CalibrationSource = "test ids",
        });
        var outDir = dir.Combine("pruned");
        result.Save(outDir);

        using var reloaded = DecoderModel.FromPretrained(outDir);
        Assert.Equal(4, reloaded.BlockCount);
        var probe = Batches(Sequences(3, 10, 50, 25), 3)[0];
        var a = model.Forward(probe.InputIds, probe.AttentionMask);
        var b = reloaded.Forward(probe.InputIds, probe.AttentionMask);
        Assert.True(MaxAbsDiff(a, b) < 1e-5);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal(4, (int)config["num_hidden_layers"]!);
        using (var reader = SafetensorsReader.Open(outDir))
        {
            var layers = reader.Names.Where(n => n.StartsWith("model.layers.", StringComparison.Ordinal))
                .Select(n => int.Parse(n.Split('.')[2])).Distinct().Order().ToList();
            Assert.Equal([0, 1, 2, 3], layers);
        }
        var prov = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
        var removed = prov["removed"]!.AsArray();
        Assert.Equal(result.Cuts.Select(c => c.Start), removed.Select(r => (int)r!["start"]!));
        Assert.Equal(6, (int)prov["original_num_hidden_layers"]!);
        Assert.Equal(result.Calibration.Fingerprint, (string)prov["calibration"]!["sha256_token_ids"]!);
        Assert.Equal("lstsq", (string)prov["estimator"]!["name"]!);
        Assert.NotNull(prov["distances"]!["by_length_then_start"]!["1"]);
        Assert.Contains("6 → 4", File.ReadAllText(Path.Combine(outDir, "README.md")));

        Assert.Throws<IOException>(() => result.Save(outDir));
        result.Save(outDir, overwrite: true);
        Assert.True(File.Exists(Path.Combine(outDir, "replaceme.json")));

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var cancelled = dir.Combine("cancelled");
        Assert.ThrowsAny<OperationCanceledException>(() => result.Save(cancelled, cancellationToken: cts.Token));
        Assert.False(Directory.Exists(cancelled));
        Assert.Equal(["pruned"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        DisposeAll(batches);
        probe.Dispose();
    }
}
