using System.Globalization;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>The machine's float32 matrix-multiply throughput on this TorchSharp build: the ceiling for the forward.</summary>
internal sealed class MatmulBenchmark : IBenchmark
{
    public string Name => "matmul";

    public string Description => "float32 n×n matmul GFLOP/s on the CPU (n = 2048)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int n = settings.Quick ? 512 : 2048;
        using var scope = NewDisposeScope();
        var a = randn(n, n);
        var b = randn(n, n);
        double seconds = Timing.MedianSeconds(() => { using var c = a.matmul(b); }, warmup: 2, repetitions: settings.Quick ? 3 : 7);
        double gflops = 2.0 * n * n * n / seconds / 1e9;
        return [new Measurement(Name, "GFLOP/s", gflops,
            string.Create(CultureInfo.InvariantCulture, $"{n}x{n} float32, median of {(settings.Quick ? 3 : 7)}, {seconds * 1e3:F1} ms per matmul, {get_num_threads()} torch threads"))];
    }
}
