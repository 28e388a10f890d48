using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// The attention step of a block, fused (<c>scaled_dot_product_attention</c>, what DecoderAttention runs) against the
/// explicit form it replaced (q·kᵀ·scale + additive bias, softmax, ·v), float32, causal + padding bias, interleaved:
/// each repetition times both, alternating which goes first.
/// </summary>
internal sealed class AttentionBenchmark : IBenchmark
{
    public string Name => "attention";

    public string Description => "fused scaled_dot_product_attention vs explicit matmul/softmax/matmul, float32, stories15M and 125M head shapes";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int reps = settings.Quick ? 3 : 9;
        var results = new List<Measurement>();
        foreach (var (label, b, h, t, hd) in new[] { ("stories15M", 8, 6, 256, 48), ("125M", 4, 12, 256, 64) })
        {
            using var scope = NewDisposeScope();
            using var one = 1.ToScalar();
            using var scale = (1.0 / Math.Sqrt(hd)).ToScalar();
            using var lowest = float.MinValue.ToScalar();
            var generator = new Generator(1);
            var q = randn([b, h, t, hd], generator: generator);
            var k = randn([b, h, t, hd], generator: generator);
            var v = randn([b, h, t, hd], generator: generator);
            var causal = ones(t, t, ScalarType.Bool).tril();                  // [T, T]
            var bias = zeros(b, 1, t, t).masked_fill(causal.logical_not(), lowest); // [B, 1, T, T]
            Tensor Fused() => nn.functional.scaled_dot_product_attention(q, k, v, bias, 0.0, false);
            Tensor Explicit() => q.matmul(k.transpose(2, 3)).mul(scale).add(bias, one).softmax(-1).matmul(v);
            double diff = (Fused() - Explicit()).abs().max().item<float>();
            var fused = new double[reps];
            var explicitTimes = new double[reps];
            for (int i = -1; i < reps; i++)                                   // i = −1: warm-up of both
            {
                bool fusedFirst = i % 2 == 0;
                double a = Time(fusedFirst ? Fused : Explicit), c = Time(fusedFirst ? Explicit : Fused);
                if (i < 0) continue;
                fused[i] = fusedFirst ? a : c;
                explicitTimes[i] = fusedFirst ? c : a;
            }
            double fusedMedian = Median(fused), explicitMedian = Median(explicitTimes);
            string detail = string.Create(CultureInfo.InvariantCulture,
                $"{label} heads: B {b}, H {h}, T {t}, hd {hd}; medians of {reps} interleaved: fused {fusedMedian * 1e3:F1} ms, explicit {explicitMedian * 1e3:F1} ms; max |diff| {diff:G2}; {get_num_threads()} torch threads");
            results.Add(new Measurement(Name, $"explicit / fused time ({label})", explicitMedian / fusedMedian, detail));
        }
        return results;
    }

    private static double Time(Func<Tensor> step)
    {
        var sw = Stopwatch.StartNew();
        using (var result = step()) { }
        return sw.Elapsed.TotalSeconds;
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
