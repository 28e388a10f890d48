using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core;
using ReplaceMe.Core.Estimation;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Shows that the cosine estimator's memory budget bounds the process's extra memory: streams random float32 batches
/// (X, Y, target, each <c>[4096, d]</c>) through <see cref="CosineEstimator"/> with a given
/// <see cref="EstimationContext.MemoryBudgetBytes"/>, runs a few Adam steps (memory, not convergence, is measured),
/// and samples the process's private bytes and working set during accumulation and the fit. Rows beyond the budget
/// spill to a temporary file. A memory benchmark, not a timed one.
/// </summary>
internal sealed class CosineMemoryBenchmark : IBenchmark
{
    private const int BatchRows = 4096;
    private const int Steps = 20;

    public string Name => "cosine-memory";

    public string Description => "cosine estimator: process memory growth vs its memory budget (d = 768, 300k tokens, budgets 512 MB and 2 GB; --quick: d = 288, 100k tokens, 64 and 256 MB)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        (int D, long Tokens, long Budget)[] cases = settings.Quick
            ? [(288, 100_000, 64L << 20), (288, 100_000, 256L << 20)]
            : [(768, 300_000, 512L << 20), (768, 300_000, 2L << 30)];
        Measure(288, BatchRows, 64L << 20); // warm-up: libtorch kernels and JIT load outside the measurements
        var results = new List<Measurement>();
        foreach (var (d, tokens, budget) in cases)
        {
            var r = Measure(d, tokens, budget);
            string detail = string.Create(CultureInfo.InvariantCulture,
                $"d={d}, {tokens:N0} tokens in {BatchRows}-row batches, budget {Mb(budget)} MB, {Steps} Adam steps, {r.Seconds:F0} s; " +
                $"working-set growth {Mb(r.WorkingSetGrowth)} MB; {r.Notes}");
            results.Add(new Measurement(Name, "private-bytes growth / budget", r.PrivateGrowth / (double)budget, detail));
        }
        return results;
    }

    private sealed record Sampled(double Seconds, long WorkingSetGrowth, long PrivateGrowth, string Notes);

    private static Sampled Measure(int d, long tokens, long budget)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long workingBefore = process.WorkingSet64, privateBefore = process.PrivateMemorySize64;
        long workingPeak = workingBefore, privatePeak = privateBefore;
        void Sample()
        {
            process.Refresh();
            workingPeak = Math.Max(workingPeak, process.WorkingSet64);
            privatePeak = Math.Max(privatePeak, process.PrivateMemorySize64);
        }
        var clock = Stopwatch.StartNew();
        string notes;
        var estimator = new CosineEstimator(new CosineOptions { Optimizer = CosineOptimizer.Adam, Steps = Steps }); // the Adam path, as documented in docs/benchmarks.md
        var progress = new SyncProgress<PruningProgress>(_ => Sample());
        using (var fit = estimator.Begin(new BlockCut(1, 2), d, new EstimationContext(Seed: 1, MemoryBudgetBytes: budget, Progress: progress)))
        {
            using var generator = new Generator(13);
            long done = 0;
            while (done < tokens)
            {
                int rows = (int)Math.Min(BatchRows, tokens - done);
                using (NewDisposeScope())
                {
                    var draws = randn([3, rows, d], generator: generator); // [3, rows, d]
                    fit.Accumulate(draws[0], draws[1], draws[2]); // values do not matter for memory
                }
                done += rows;
            }
            var estimate = fit.Complete();
            notes = string.Join("; ", estimate.Report.Notes?.Where(n => n.StartsWith("row", StringComparison.Ordinal)) ?? []);
            estimate.Transform?.Dispose();
            Sample();
        }
        return new Sampled(clock.Elapsed.TotalSeconds, workingPeak - workingBefore, privatePeak - privateBefore, notes);
    }

    /// <summary>Calls the handler on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
    {
        public void Report(T value) => handler(value);
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture);
}
