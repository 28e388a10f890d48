using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core;
using ReplaceMe.Core.Estimation;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Shows that the cosine estimator's memory budget bounds the process's extra memory: streams random float32 batches
/// (X, Y, target, each <c>[4096, d]</c>) through <see cref="CosineEstimator"/> with a given
/// <see cref="EstimationContext.MemoryBudgetBytes"/>, runs a few optimiser steps (memory, not convergence, is measured),
/// and samples the process's private bytes and working set during accumulation and the fit (every 20 ms from a
/// sampling thread, and Linux's peak resident set, reset before each case). Rows beyond the budget spill to a
/// temporary file. <c>cosine-memory</c> runs Adam; <c>cosine-memory-lbfgs</c> the default full-batch L-BFGS at the
/// hidden sizes of 1B–8B models, whose d×d working set the budget must cover too. A memory benchmark, not a timed one.
/// </summary>
internal sealed class CosineMemoryBenchmark(bool lbfgs = false) : IBenchmark
{
    private const int BatchRows = 4096;
    private const int AdamSteps = 20;
    private const int LbfgsIterations = 10; // more than the 8 pairs, so that the history fills

    public string Name => lbfgs ? "cosine-memory-lbfgs" : "cosine-memory";

    public string Description => lbfgs
        ? "cosine estimator, L-BFGS: process memory growth vs its memory budget (d = 2048, 16k tokens, 512 MB; d = 4096, 8k tokens, 2 GB; --quick: d = 2048 only)"
        : "cosine estimator, Adam: process memory growth vs its memory budget (d = 768, 300k tokens, budgets 512 MB and 2 GB; --quick: d = 288, 100k tokens, 64 and 256 MB)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        (int D, long Tokens, long Budget)[] cases = lbfgs
            ? settings.Quick
                ? [(2048, 16_384, 512L << 20)]
                : [(2048, 16_384, 512L << 20), (4096, 8_192, 2L << 30)]
            : settings.Quick
                ? [(288, 100_000, 64L << 20), (288, 100_000, 256L << 20)]
                : [(768, 300_000, 512L << 20), (768, 300_000, 2L << 30)];
        Measure(288, BatchRows, 64L << 20); // warm-up: libtorch kernels and JIT load outside the measurements
        var results = new List<Measurement>();
        foreach (var (d, tokens, budget) in cases)
        {
            var r = Measure(d, tokens, budget);
            string steps = lbfgs ? $"at most {LbfgsIterations} L-BFGS iterations" : $"{AdamSteps} Adam steps";
            string detail = string.Create(CultureInfo.InvariantCulture,
                $"d={d}, {tokens:N0} tokens in {BatchRows}-row batches, budget {Mb(budget)} MB, {steps}, {r.Seconds:F0} s; " +
                $"working-set growth {Mb(r.WorkingSetGrowth)} MB, peak-RSS growth {(r.PeakRssGrowth is long p ? Mb(p) : "n/a")} MB; {r.Notes}");
            results.Add(new Measurement(Name, "private-bytes growth / budget", r.PrivateGrowth / (double)budget, detail));
        }
        return results;
    }

    private sealed record Sampled(double Seconds, long WorkingSetGrowth, long PrivateGrowth, long? PeakRssGrowth, string Notes);

    private Sampled Measure(int d, long tokens, long budget)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long workingBefore = process.WorkingSet64, privateBefore = process.PrivateMemorySize64;
        long workingPeak = workingBefore, privatePeak = privateBefore;
        bool peakReset = ResetPeakRss();
        long? rssBefore = peakReset ? PeakRss() : null;
        var gate = new object();
        void Sample()
        {
            lock (gate)
            {
                process.Refresh();
                workingPeak = Math.Max(workingPeak, process.WorkingSet64);
                privatePeak = Math.Max(privatePeak, process.PrivateMemorySize64);
            }
        }
        using var sampler = new Timer(_ => Sample(), null, 0, 20); // peaks inside a pass happen between progress reports
        var clock = Stopwatch.StartNew();
        string notes;
        var options = lbfgs
            ? new CosineOptions { Steps = LbfgsIterations, Tolerance = 1e-12 } // the default optimiser; all iterations run
            : new CosineOptions { Optimizer = CosineOptimizer.Adam, Steps = AdamSteps };
        var estimator = new CosineEstimator(options);
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
            notes = string.Join("; ", estimate.Report.Notes?.Where(n => n.StartsWith("row", StringComparison.Ordinal)
                || n.StartsWith("L-BFGS working", StringComparison.Ordinal) || n.Contains("pairs", StringComparison.Ordinal)) ?? []);
            estimate.Transform?.Dispose();
            Sample();
        }
        sampler.Change(Timeout.Infinite, Timeout.Infinite);
        Sample();
        long? rssGrowth = peakReset && PeakRss() is long after && rssBefore is long before ? after - before : null;
        return new Sampled(clock.Elapsed.TotalSeconds, workingPeak - workingBefore, privatePeak - privateBefore, rssGrowth, notes);
    }

    /// <summary>Linux: resets the process's peak resident set (VmHWM) to its current size; false elsewhere.</summary>
    private static bool ResetPeakRss()
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return false;
            File.WriteAllText("/proc/self/clear_refs", "5");
            return PeakRss() is not null;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Linux: the process's peak resident set (VmHWM) in bytes; null when unavailable.</summary>
    private static long? PeakRss()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return null;
    }

    /// <summary>Calls the handler on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
    {
        public void Report(T value) => handler(value);
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture);
}
