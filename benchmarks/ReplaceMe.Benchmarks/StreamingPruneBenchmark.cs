using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ReplaceMe.Core;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// A whole streamed prune of a random-weight bfloat16 checkpoint of Llama-3.2-1B's shape (<see cref="LlamaShape"/>'s
/// generator, as <see cref="StreamingRewriteBenchmark"/> uses: 16 blocks, d 2048, ff 8192, vocab 128256, tied, 2.47 GB): a
/// <see cref="StreamedDecoderModel"/> (float32 compute, one block resident), 2 × 512 random calibration tokens (batch
/// size 1), angular selection of 4 blocks, least squares, block-major passes with the budget split the CLI uses for
/// <c>--max-memory 1.6GB</c>, then <see cref="PruningResult.Save(string, bool, CancellationToken)"/> through the streaming
/// writer. Runs in a child process and reports its peak resident set (VmHWM), the stage times and the model's float32
/// size. <c>--quick</c> uses 4 blocks, a 32000-token vocabulary and one removed block.
/// </summary>
internal sealed class StreamingPruneBenchmark : IBenchmark
{
    public const string ChildFlag = "--streaming-prune-child";
    private const long Budget = 1_600_000_000;

    public string Name => "stream-prune-stages";

    public string Description => "streamed prune (one block resident, block-major) of a Llama-3.2-1B-shaped bf16 checkpoint: peak RSS and stage times";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        var model = LlamaShape.For(null, settings.Quick);    // Llama-3.2-1B (or the 4-block quick shape)
        int n = settings.Quick ? 1 : 4;
        var root = Path.Combine(Path.GetTempPath(), "replaceme-bench-" + Guid.NewGuid().ToString("N"));
        var source = Path.Combine(root, "source");
        var output = Path.Combine(root, "pruned");
        try
        {
            long sourceBytes = model.WriteCheckpoint(source);
            var self = Environment.ProcessPath!;
            var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(StreamingPruneBenchmark).Assembly.Location);
            foreach (var a in new[] { ChildFlag, source, output, n.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var text = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0) throw new InvalidOperationException($"The streamed prune child failed ({process.ExitCode}): {text}");
            var o = JsonNode.Parse(text.Trim().Split('\n')[^1])!;
            var inv = CultureInfo.InvariantCulture;
            long peak = (long)o["peak_rss"]!, float32 = 2 * sourceBytes;
            string shape = string.Create(inv, $"{model.Layers} blocks, d 2048, ff 8192, vocab {model.Vocab}, tied, bf16 {sourceBytes / 1e9:F2} GB ({float32 / 1e9:F2} GB as float32); 2 x 512 tokens, n {n}, lstsq (underdetermined: small ridge); cuts {o["cuts"]}");
            return
            [
                new Measurement(Name, "peak RSS MB", peak / 1048576.0,
                    string.Create(inv, $"VmHWM of the child (prune + save; {o["rss_before"]!.GetValue<long>() / 1048576.0:F0} MB before opening the model); {100.0 * peak / float32:F1}% of the float32 size; {shape}")),
                new Measurement(Name, "peak RSS by stage", 0, (string)o["stage_peaks"]!),
                new Measurement(Name, "profile s", (double)o["profile"]!, "block-major distance pass (one read of each block)" + ((bool)o["prefit"]! ? "; it also fed the fit" : "")),
                new Measurement(Name, "estimate s", (double)o["estimate"]!, "least-squares fit (a block-major pass up to the cut when the statistics budget refused the prefit)"),
                new Measurement(Name, "save s", (double)o["save"]!, "PruningResult.Save through PrunedCheckpointWriter (bf16 copies, folded down_proj)"),
                new Measurement(Name, "total s", (double)o["total"]!, "open + prune + save"),
            ];
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>In the child: open streamed, prune, save; then one JSON line with the figures.</summary>
    public static int Child(string[] args)
    {
        var (source, output, n) = (args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
        long before = StatusKiB("VmRSS:") * 1024;
        var clock = Stopwatch.StartNew();
        using var model = StreamedDecoderModel.Open(source);
        var rng = new Random(11);
        var ids = Enumerable.Range(0, 2).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, 512).Select(_ => rng.Next(1, 32000)).ToArray()).ToList();
        using var batches = CalibrationBatches.Batch(ids, 0, 1);
        // The CLI's split of --max-memory (MemoryArgs.Apply): what is left after a block's working set, one third each.
        var c = model.SourceConfig;
        long downProj = (long)c.HiddenSize * c.IntermediateSize;
        long left = Math.Max(0, Budget - (2 * model.BlockBytes + 2 * downProj * 8 + 2 * downProj * 4 + (512L << 20)));
        // 1024 tokens are fewer than d = 2048: least squares fits with its small ridge, as `prune --allow-underdetermined`.
        var options = new PruningOptions
        {
            BlocksPerCut = n, BlockMajor = true, HiddenStateBudgetBytes = left / 3, StatisticsBudgetBytes = left / 3,
            Estimator = new ReplaceMe.Core.Estimation.LeastSquaresEstimator(new ReplaceMe.Core.Estimation.LeastSquaresOptions(AllowUnderdetermined: true)),
        };
        // Peak RSS per stage: a sampler thread reads VmRSS every 20 ms; the stage is what progress last reported.
        var peaks = new Dictionary<string, long>(StringComparer.Ordinal);
        string stage = "open";
        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long rss = StatusKiB("VmRSS:") * 1024;
                lock (peaks) peaks[stage] = Math.Max(peaks.GetValueOrDefault(stage), rss);
                Thread.Sleep(20);
            }
        }) { IsBackground = true };
        sampler.Start();
        var progress = new StageProgress(p => { lock (peaks) stage = p.Stage; });
        using var result = new ReplaceMePruner().Prune(model, batches, options, progress);
        var save = Stopwatch.StartNew();
        lock (peaks) stage = "save";
        result.Save(output);
        double saveSeconds = save.Elapsed.TotalSeconds;
        stop.Cancel();
        sampler.Join();
        long peak = StatusKiB("VmHWM:") * 1024;
        Console.WriteLine(new JsonObject
        {
            ["peak_rss"] = peak, ["rss_before"] = before, ["profile"] = result.Timings["profile"].TotalSeconds,
            ["estimate"] = result.Timings["estimate"].TotalSeconds, ["save"] = saveSeconds, ["total"] = clock.Elapsed.TotalSeconds,
            ["cuts"] = string.Join(" ", result.Cuts),
            ["stage_peaks"] = string.Join(", ", peaks.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value / 1048576.0:F0} MB"))), ["prefit"] = result.ForwardEquivalents <= 1.0 + 1e-9,
        }.ToJsonString());
        return 0;
    }

    private sealed class StageProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }

    private static long StatusKiB(string field)
    {
        var line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
