using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tests.Modeling;
using ReplaceMe.Core.Tests.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Surgery;

public class PrunedCheckpointWriterTests
{
    public PrunedCheckpointWriterTests() => TorchRuntime.EnsureLoaded();

    private const int Layers = 6;

    /// <summary>A random 6-block checkpoint written by the project's own writer in <paramref name="dtype"/>, sharded
    /// small, with a per-layer array, an unknown field and a tokenizer file.</summary>
    internal static string MakeSource(TempDir root, ScalarType dtype = ScalarType.BFloat16, long maxShard = 40_000, int layers = Layers, int seed = 7)
    {
        var dir = root.Combine("src");
        var config = TinyModels.Llama(layers) with
        {
            TorchDtype = Precision.TorchDtypeName(dtype),
            Raw = new JsonObject
            {
                ["model_type"] = "llama",
                ["num_hidden_layers"] = layers,
                ["layer_types"] = new JsonArray([.. Enumerable.Range(0, layers).Select(i => (JsonNode)JsonValue.Create(i % 2 == 0 ? "full_attention" : "sliding_attention"))]),
                ["my_custom_field"] = new JsonObject { ["kept"] = true },
            },
        };
        using (var model = DecoderModel.Create(config, seed: seed))
            model.SavePretrained(dir, new SaveOptions { DType = dtype, MaxShardBytes = maxShard });
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"add_bos_token\": true}");
        return dir;
    }

    private static Tensor RandomT(int d, int seed) =>
        torch.eye(d, dtype: ScalarType.Float64).add(torch.randn([d, d], ScalarType.Float64, generator: new Generator((ulong)seed)), HeldScalars.Hold(0.1));

    private static byte[] Raw(SafetensorsReader r, string name)
    {
        using var t = r.Read(name);
        return t.contiguous().bytes.ToArray();
    }

    [Fact]
    public void Untouched_tensors_are_bit_identical_renamed_and_the_fold_is_TtW_in_float64()
    {
        using var root = TestPaths.NewTempDir();
        var source = MakeSource(root);
        var outDir = root.Combine("out");
        using var t = RandomT(32, 1);
        var report = PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], outDir,
            new PrunedCheckpointOptions { MaxShardBytes = 30_000 });

        Assert.Equal((6, 4, 1), (report.OriginalBlockCount, report.BlockCount, report.TensorsFolded));
        using var src = SafetensorsReader.Open(source);
        using var dst = SafetensorsReader.Open(outDir);
        int[] map = [0, 1, -1, -1, 2, 3];
        var expectedNames = src.Names.Select(n =>
        {
            var m = System.Text.RegularExpressions.Regex.Match(n, @"^model\.layers\.(\d+)\.(.+)$");
            if (!m.Success) return n;
            int to = map[int.Parse(m.Groups[1].Value)];
            return to < 0 ? null : $"model.layers.{to}.{m.Groups[2].Value}";
        }).OfType<string>().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expectedNames, dst.Names.ToList());
        foreach (var (from, to) in new[] { (0, 0), (1, 1), (4, 2), (5, 3) })
            foreach (var name in src.Names.Where(n => n.StartsWith($"model.layers.{from}.", StringComparison.Ordinal)))
            {
                var outName = $"model.layers.{to}." + name[$"model.layers.{from}.".Length..];
                Assert.Equal("BF16", dst.GetInfo(outName).DType);
                if (from == 1 && name.EndsWith("down_proj.weight", StringComparison.Ordinal)) continue;
                Assert.True(Raw(src, name).AsSpan().SequenceEqual(Raw(dst, outName)), $"{name} -> {outName} not bit-identical");
            }
        foreach (var name in new[] { "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight" })
            Assert.True(Raw(src, name).AsSpan().SequenceEqual(Raw(dst, name)), name);

        // Independent reference: (TᵀW)[r, c] = Σ_k T[k, r]·W[k, c] with loops in float64, then cast to bf16.
        var w = src.Read("model.layers.1.mlp.down_proj.weight", ScalarType.Float64).data<double>().ToArray(); // [32, 48]
        var tv = t.data<double>().ToArray();
        var reference = new double[32 * 48];
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 48; c++)
            {
                double acc = 0;
                for (int k = 0; k < 32; k++) acc += tv[k * 32 + r] * w[k * 48 + c];
                reference[r * 48 + c] = acc;
            }
        using var refBf16 = torch.tensor(reference, [32, 48], ScalarType.Float64).to(ScalarType.BFloat16);
        Assert.Equal(refBf16.bytes.ToArray(), Raw(dst, "model.layers.1.mlp.down_proj.weight"));

        // config.json: every field kept, the per-layer array shortened, the tokenizer file copied, sharded with an index.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!.AsObject();
        Assert.Equal(4, (int)config["num_hidden_layers"]!);
        Assert.Equal(["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
            config["layer_types"]!.AsArray().Select(n => (string)n!).ToArray());
        Assert.True((bool)config["my_custom_field"]!["kept"]!);
        Assert.Equal("bfloat16", (string)config["torch_dtype"]!);
        Assert.Equal("{\"add_bos_token\": true}", File.ReadAllText(Path.Combine(outDir, "tokenizer_config.json")));
        var shards = Directory.GetFiles(outDir, "model-*.safetensors");
        Assert.True(shards.Length > 1);
        long largestTensor = dst.Names.Max(n => dst.GetInfo(n).ByteCount);
        foreach (var s in shards)
        {
            using var one = SafetensorsReader.Open(s);
            long data = one.Names.Sum(n => one.GetInfo(n).ByteCount);
            Assert.True(data <= Math.Max(30_000, largestTensor), $"{s} holds {data} bytes");
        }
        Assert.Equal(report.Files.Count, shards.Length + 1); // + the index
        Assert.True(File.Exists(Path.Combine(outDir, SafetensorsReader.IndexFileName)));
    }

    [Fact]
    public void Adjacent_cuts_fold_into_the_nearest_kept_block_like_surgery_on_a_loaded_model()
    {
        using var root = TestPaths.NewTempDir();
        var source = MakeSource(root, ScalarType.Float32, maxShard: long.MaxValue);
        using var t1 = RandomT(32, 2);
        using var t2 = RandomT(32, 3);
        var outDir = root.Combine("out");
        PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(3, 4), t2), new CutTransform(new BlockCut(2, 3), t1)], outDir);
        Assert.True(File.Exists(Path.Combine(outDir, SafetensorsReader.SingleFileName))); // single-file source stays single

        // Reference: the library's surgeon on the model loaded in float64, cuts applied one after the other.
        using var model = DecoderModel.FromPretrained(source, new ModelLoadOptions { DType = ScalarType.Float64 });
        var surgeon = new ModelSurgeon();
        surgeon.Apply(model, new BlockCut(2, 3), t1);
        surgeon.Apply(model, new BlockCut(2, 3), t2); // [3, 4) in original indices
        using var dst = SafetensorsReader.Open(outDir);
        foreach (var (name, expected) in model.state_dict())
        {
            using var got = dst.Read(name, ScalarType.Float64);
            Assert.True(got.equal(expected.to(ScalarType.Float32).to(ScalarType.Float64)).all().item<bool>(), name);
        }
    }

    [Fact]
    public void Cancellation_and_a_source_that_changes_leave_no_output()
    {
        using var root = TestPaths.NewTempDir();
        var source = MakeSource(root);
        using var t = RandomT(32, 4);
        var outDir = root.Combine("out");
        using var cts = new CancellationTokenSource();
        var cancelAfterFirst = new SyncProgress(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() => PrunedCheckpointWriter.Write(source,
            [new CutTransform(new BlockCut(2, 4), t)], outDir, progress: cancelAfterFirst, cancellationToken: cts.Token));
        Assert.Equal(["src"], Directory.EnumerateFileSystemEntries(root.Path).Select(p => Path.GetFileName(p)!).ToArray());

        var shard = Directory.GetFiles(source, "model-*.safetensors")[0];
        var touch = new SyncProgress(_ => File.SetLastWriteTimeUtc(shard, DateTime.UtcNow.AddMinutes(5)));
        var ex = Assert.Throws<SourceFileChangedException>(() => PrunedCheckpointWriter.Write(source,
            [new CutTransform(new BlockCut(2, 4), t)], outDir, progress: touch));
        Assert.Contains("changed while", ex.Message);
        Assert.Equal(shard, ex.FilePath);
        Assert.Equal(["src"], Directory.EnumerateFileSystemEntries(root.Path).Select(p => Path.GetFileName(p)!).ToArray());
    }

    [Fact]
    public void Bad_cuts_and_transforms_are_refused_before_anything_is_written()
    {
        using var root = TestPaths.NewTempDir();
        var source = MakeSource(root);
        using var t = RandomT(32, 5);
        using var wrong = RandomT(16, 5);
        using var nan = t.clone();
        nan[0, 0] = torch.tensor(double.NaN);
        var outDir = root.Combine("out");
        Assert.Throws<PruningException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t), new CutTransform(new BlockCut(3, 5), t)], outDir));
        Assert.Throws<PruningException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(0, 2), t)], outDir));
        Assert.Throws<PruningException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(4, 7), t)], outDir));
        Assert.Throws<PruningException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), wrong)], outDir));
        Assert.Throws<PruningException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), nan)], outDir));
        Assert.Throws<IOException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], Path.Combine(source, "inside")));
        Assert.Equal(["src"], Directory.EnumerateFileSystemEntries(root.Path).Select(p => Path.GetFileName(p)!).ToArray());
    }

    [Fact]
    public void PruningResult_Save_streams_from_the_source_and_falls_back_to_memory_when_the_model_changed()
    {
        using var root = TestPaths.NewTempDir();
        var source = MakeSource(root);
        var sequences = PipelineFixtures.Sequences(12, 12, 50, 9);
        var batches = PipelineFixtures.Batches(sequences, 4);
        try
        {
            var options = new PruningOptions { BlocksPerCut = 2, Selector = new FixedCutSelector(2, 2), Estimator = new LeastSquaresEstimator() };
            foreach (bool modify in new[] { false, true })
            {
                using var model = DecoderModel.FromPretrained(source);
                var logger = new ListLogger();
                using var result = new ReplaceMePruner().Prune(model, batches, options, logger: logger);
                if (modify) model.state_dict()["model.norm.weight"].mul_(HeldScalars.Hold(2.0));
                var outDir = root.Combine(modify ? "memory" : "streamed");
                result.Save(outDir);
                Assert.Equal(!modify, logger.Lines.Any(l => l.StartsWith("Wrote ", StringComparison.Ordinal) && l.Contains("1 folded", StringComparison.Ordinal)));
                Assert.Equal(modify, logger.Lines.Any(l => l.StartsWith("Writing the pruned model from memory", StringComparison.Ordinal) && l.Contains("model.norm.weight", StringComparison.Ordinal)));
                Assert.Empty(Directory.GetDirectories(root.Path, ".*")); // the abandoned streaming attempt left nothing
                Assert.True(File.Exists(Path.Combine(outDir, "replaceme.json")));
                using var saved = DecoderModel.FromPretrained(outDir);
                foreach (var (name, p) in model.state_dict())
                {
                    // The folded weight is rounded once (float64 -> bf16) when streamed, twice (-> float32 -> bf16) from memory.
                    double tolerance = name == "model.layers.1.mlp.down_proj.weight" ? p.abs().max().item<float>() / 256 : 0;
                    Assert.True(PipelineFixtures.MaxAbsDiff(saved.state_dict()[name], p.to(ScalarType.BFloat16)) <= tolerance, name);
                }
            }
        }
        finally
        {
            PipelineFixtures.DisposeAll(batches);
        }
    }

    [Fact]
    public void Stories15M_streamed_checkpoint_gives_the_logits_of_the_in_memory_save()
    {
        var shared = Stories15MTestModel.Shared;
        using var root = TestPaths.NewTempDir();
        using var t = RandomT(shared.Model.HiddenSize, 6);
        var cut = new BlockCut(2, 4);
        using (var model = DecoderModel.FromPretrained(shared.ModelDir))
        {
            new ModelSurgeon().Apply(model, cut, t);
            model.SavePretrained(root.Combine("memory")); // the in-memory writer
        }
        PrunedCheckpointWriter.Write(shared.ModelDir, [new CutTransform(cut, t)], root.Combine("streamed"));
        using var a = DecoderModel.FromPretrained(root.Combine("memory"));
        using var b = DecoderModel.FromPretrained(root.Combine("streamed"));
        var ids = torch.tensor(new long[] { 1, 403, 2501, 931, 29892, 727, 471 }).unsqueeze(0);
        using var la = a.Forward(ids, torch.ones_like(ids));
        using var lb = b.Forward(ids, torch.ones_like(ids));
        Assert.True(la.equal(lb).all().item<bool>());
        Assert.Equal(File.ReadAllText(Path.Combine(root.Combine("memory"), "config.json")), File.ReadAllText(Path.Combine(root.Combine("streamed"), "config.json")));
    }

    /// <summary>Runs the callback synchronously on the reporting thread (Progress&lt;T&gt; posts asynchronously).</summary>
    private sealed class SyncProgress(Action<PruningProgress> action) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => action(value);
    }

    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state,
            Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add(formatter(state, exception));
        }
    }
}
