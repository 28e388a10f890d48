using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Shows that least-squares calibration memory does not grow with the number of calibration tokens: streams random
/// float32 batches (X, Y, target, each <c>[rows, d]</c>) through <see cref="LeastSquaresEstimator"/> for increasing
/// token counts and samples the process's working set, private bytes and managed heap while it runs. A memory
/// benchmark, not a timed one (the seconds are reported only to size runs).
/// </summary>
internal sealed class LeastSquaresMemoryBenchmark : IBenchmark
{
    private const int BatchRows = 4096;

    public string Name => "lstsq-memory";

    public string Description => "least-squares calibration memory vs tokens (d = 288/768; 10k, 100k, 1M tokens)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int[] hiddenSizes = settings.Quick ? [288] : [288, 768];
        long[] tokenCounts = settings.Quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
        Measure(hiddenSizes[0], BatchRows); // warm-up: libtorch kernels and JIT load outside the measurements
        var results = new List<Measurement>();
        foreach (int d in hiddenSizes)
            foreach (long tokens in tokenCounts)
            {
                var r = Measure(d, tokens);
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"d={d}, {tokens:N0} tokens in {BatchRows}-row batches, {r.Seconds:F0} s; private +{Mb(r.PrivateGrowth)} MB, managed peak {Mb(r.ManagedPeak)} MB, process peak working set {Mb(r.ProcessPeak)} MB, relative residual {r.Residual:F3}");
                results.Add(new Measurement(Name, "working-set growth MB", r.WorkingSetGrowth / 1048576.0, detail));
            }
        return results;
    }

    private sealed record Sampled(double Seconds, long WorkingSetGrowth, long PrivateGrowth, long ManagedPeak, long ProcessPeak, double Residual);

    private static Sampled Measure(int d, long tokens)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long workingBefore = process.WorkingSet64, privateBefore = process.PrivateMemorySize64;
        var peak = new Peaks(workingBefore, privateBefore, GC.GetTotalMemory(false));
        var clock = Stopwatch.StartNew();
        double residual;
        using (var fit = new LeastSquaresEstimator().Begin(new BlockCut(1, 2), d, new EstimationContext(Seed: 1)))
        {
            using var generator = new Generator(11);
            long done = 0;
            int batch = 0;
            while (done < tokens)
            {
                int rows = (int)Math.Min(BatchRows, tokens - done);
                using (NewDisposeScope())
                {
                    var draws = randn([3, rows, d], generator: generator); // [3, rows, d]
                    var x = draws[0]; // [rows, d]
                    var y = draws[1]; // [rows, d]
                    var target = y + x.mul(0.5) + draws[2].mul(0.1); // [rows, d]: values do not matter for memory
                    fit.Accumulate(x, y, target);
                }
                done += rows;
                if (++batch % 8 == 0) peak.Sample(process);
            }
            var estimate = fit.Complete();
            residual = estimate.Report.RelativeResidual ?? double.NaN;
            estimate.Transform?.Dispose();
            peak.Sample(process);
        }
        process.Refresh();
        return new Sampled(clock.Elapsed.TotalSeconds, peak.Working - workingBefore, peak.Private - privateBefore, peak.Managed,
            process.PeakWorkingSet64, residual);
    }

    private sealed class Peaks(long working, long privateBytes, long managed)
    {
        public long Working { get; private set; } = working;
        public long Private { get; private set; } = privateBytes;
        public long Managed { get; private set; } = managed;

        public void Sample(Process process)
        {
            process.Refresh();
            Working = Math.Max(Working, process.WorkingSet64);
            Private = Math.Max(Private, process.PrivateMemorySize64);
            Managed = Math.Max(Managed, GC.GetTotalMemory(false));
        }
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
}
