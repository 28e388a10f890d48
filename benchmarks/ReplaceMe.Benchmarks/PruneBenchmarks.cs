using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>A random-weight stories15M-shaped model (d 288, 6 heads, d_ff 768, vocab 32000) and seeded calibration batches.</summary>
internal static class PruneWorkload
{
    public static DecoderModel Model(int layers) => DecoderModel.Create(new ModelConfig
    {
        ModelType = "llama", HiddenSize = 288, IntermediateSize = 768, NumHiddenLayers = layers, NumAttentionHeads = 6,
        NumKeyValueHeads = 6, HeadDim = 48, VocabSize = 32000, Raw = new JsonObject { ["model_type"] = "llama" },
    }, new ModelLoadOptions(CPU, ScalarType.Float32), seed: 1);

    public static List<TokenBatch> Batches(int batches, int batchSize, int length)
    {
        var rng = new Random(7);
        var sequences = Enumerable.Range(0, batches * batchSize)
            .Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, rng.Next(length / 2, length + 1)).Select(_ => rng.Next(1, 32000)).ToArray())
            .ToList();
        return [.. CalibrationBatches.Batch(sequences, 0, batchSize, PaddingSide.Right)];
    }

    /// <summary>One prune on a fresh model: wall seconds, CPU seconds of the process, forward-equivalents.</summary>
    public static (double Wall, double Cpu, double Passes) Prune(int layers, List<TokenBatch> batches, PruningOptions options)
    {
        using var model = Model(layers);
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        using var result = new ReplaceMePruner().Prune(model, batches, options);
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu).TotalSeconds, result.ForwardEquivalents);
    }
}

/// <summary>
/// Forward work and wall time of a prune with the candidates' statistics fed in the profile pass against the same
/// prune with the fit in a second pass (<c>StatisticsBudgetBytes = 0</c>), for the default angular + least squares
/// and for replacement-aware selection; the two settings alternate within one run, on 1 torch thread.
/// </summary>
internal sealed class PrunePassesBenchmark : IBenchmark
{
    public string Name => "prune-passes";

    public string Description => "forward-equivalents and wall time: one-pass vs two-pass fit, angular+lstsq and replacement-aware, 12-block d 288 model";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int layers = 12, reps = settings.Quick ? 1 : 3;
        var batches = PruneWorkload.Batches(settings.Quick ? 4 : 8, 4, settings.Quick ? 64 : 128);
        var results = new List<Measurement>();
        using var threads = TorchThreads.Use(1);                              // the CLI default; see the "threads" benchmark
        try
        {
            foreach (var (label, options) in new[]
            {
                ("angular+lstsq", new PruningOptions { BlocksPerCut = 3 }),
                ("replacement-aware+lstsq", new PruningOptions { BlocksPerCut = 3, Selector = new ReplacementAwareSelector() }),
            })
            {
                var one = new List<(double Wall, double Cpu, double Passes)>();
                var two = new List<(double Wall, double Cpu, double Passes)>();
                for (int i = 0; i < reps; i++)
                {
                    one.Add(PruneWorkload.Prune(layers, batches, options));
                    two.Add(PruneWorkload.Prune(layers, batches, options with { StatisticsBudgetBytes = 0 }));
                }
                double oneWall = AttentionBenchmark.Median([.. one.Select(r => r.Wall)]), twoWall = AttentionBenchmark.Median([.. two.Select(r => r.Wall)]);
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"{label}, n = 3 of {layers} blocks, {batches.Count} batches × 4 × ≤ {batches[0].InputIds.shape[1]} tokens; forward-equivalents one-pass {one[0].Passes:F3}, two-pass {two[0].Passes:F3}; median wall of {reps} alternating runs {oneWall:F1} s vs {twoWall:F1} s; {TorchThreads.Current} torch threads");
                results.Add(new Measurement(Name, $"forward-equivalents one-pass ({label})", one[0].Passes, detail));
                results.Add(new Measurement(Name, $"forward-equivalents two-pass ({label})", two[0].Passes, detail));
                results.Add(new Measurement(Name, $"two-pass / one-pass wall time ({label})", twoWall / oneWall, detail));
            }
        }
        finally
        {
            foreach (var b in batches) b.Dispose();
        }
        return results;
    }
}

/// <summary>
/// The same prune (angular + least squares) and the same greedy generation with 1 torch thread and with one per
/// logical core, alternating within one run; wall and process CPU time.
/// </summary>
internal sealed class ThreadsBenchmark : IBenchmark
{
    public string Name => "threads";

    public string Description => "prune and greedy generation with 1 torch thread vs one per core, alternating, wall and CPU time";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int layers = 6, reps = settings.Quick ? 1 : 3, cores = Environment.ProcessorCount;
        var batches = PruneWorkload.Batches(settings.Quick ? 4 : 8, 4, settings.Quick ? 64 : 128);
        var results = new List<Measurement>();
        try
        {
            var prune = new Dictionary<int, List<(double Wall, double Cpu)>> { [1] = [], [cores] = [] };
            var generate = new Dictionary<int, List<(double Wall, double Cpu)>> { [1] = [], [cores] = [] };
            using var generatorModel = PruneWorkload.Model(layers);
            int[] prompt = [.. Enumerable.Range(0, 16).Select(i => i * 97 % 31999 + 1)];
            for (int i = 0; i < reps; i++)
                foreach (int threads in i % 2 == 0 ? new[] { 1, cores } : [cores, 1])
                {
                    using var scope = TorchThreads.Use(threads);
                    var p = PruneWorkload.Prune(layers, batches, new PruningOptions { BlocksPerCut = 2 });
                    prune[threads].Add((p.Wall, p.Cpu));
                    generate[threads].Add(Generate(generatorModel, prompt, settings.Quick ? 8 : 32));
                }
            foreach (var (what, runs) in new[] { ("prune", prune), ("generate", generate) })
            {
                double w1 = AttentionBenchmark.Median([.. runs[1].Select(r => r.Wall)]), wn = AttentionBenchmark.Median([.. runs[cores].Select(r => r.Wall)]);
                double c1 = AttentionBenchmark.Median([.. runs[1].Select(r => r.Cpu)]), cn = AttentionBenchmark.Median([.. runs[cores].Select(r => r.Cpu)]);
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"{what}: {layers}-block d 288 model; medians of {reps} alternating runs: 1 thread {w1:F2} s wall / {c1:F2} s CPU, {cores} threads {wn:F2} s wall / {cn:F2} s CPU");
                results.Add(new Measurement(Name, $"{cores}-thread / 1-thread wall time ({what})", wn / w1, detail));
                results.Add(new Measurement(Name, $"{cores}-thread / 1-thread CPU time ({what})", cn / c1, detail));
            }
        }
        finally
        {
            foreach (var b in batches) b.Dispose();
        }
        return results;
    }

    private static (double Wall, double Cpu) Generate(DecoderModel model, int[] prompt, int tokens)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        new TextGenerator(model).Generate([prompt], new GenerationOptions { MaxNewTokens = tokens, EosTokenIds = [] });
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu).TotalSeconds);
    }
}
