using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// The fused attention kernel the blocks use (<c>DecoderAttention.Attend</c>) against an explicit float64 softmax written
/// here with plain loops, on the model's own additive bias (causal + left padding + sliding window, with and without a
/// KV-cache past). Whole-model agreement is covered by DecoderModelReferenceTests (GQA, window, biases, QK-norm against
/// the independent reference decoder) and the stories15M greedy text (Llama2cImporterTests).
/// </summary>
public class FusedAttentionTests
{
    [Theory]
    [InlineData(ScalarType.Float64, 1e-12)]
    [InlineData(ScalarType.Float32, 2e-6)]
    public void Fused_kernel_matches_an_explicit_float64_softmax_with_padding_and_window(ScalarType dtype, double tolerance)
    {
        var config = TinyModels.Mistral(); // sliding window 4
        using var model = TinyModels.Build(config, TinyModels.RandomWeights(config, seed: 3), dtype);
        int[][] rows = [TinyModels.RandomIds(config, 9, 1), TinyModels.RandomIds(config, 6, 2)];
        using var scope = NewDisposeScope();
        var (ids, mask) = TinyModels.Pad(rows, left: true);
        using var state = model.Embed(ids, mask);
        var bias = ((DecoderModelData)state.ModelData!).MaskBias;                 // [2, 1, 9, 9]
        AssertMatches(bias, heads: 3, headDim: 8, dtype, tolerance, seed: 7);
        // The window is in the bias: query 8 may not see key 4 (8 − 4 ≥ 4) but sees key 5.
        Assert.True(bias[0, 0, 8, 4].to(ScalarType.Float64).item<double>() < -1e30);
        Assert.Equal(0.0, bias[0, 0, 8, 5].to(ScalarType.Float64).item<double>());
    }

    [Fact]
    public void Fused_kernel_matches_the_explicit_softmax_for_one_new_token_after_a_cached_past()
    {
        var config = TinyModels.Mistral();
        using var model = TinyModels.Build(config, TinyModels.RandomWeights(config, seed: 4));
        int[][] rows = [TinyModels.RandomIds(config, 8, 3), TinyModels.RandomIds(config, 5, 4)];
        using var scope = NewDisposeScope();
        var (ids, mask) = TinyModels.Pad(rows, left: true);
        using var cache = new KvCache();
        model.Forward(ids.narrow(1, 0, 7), mask.narrow(1, 0, 7), cache);
        using var state = model.EmbedCore(ids.narrow(1, 7, 1), mask.narrow(1, 7, 1), cache);
        var bias = ((DecoderModelData)state.ModelData!).MaskBias;                 // [2, 1, 1, 8]
        Assert.Equal([2L, 1, 1, 8], bias.shape);
        AssertMatches(bias, heads: 2, headDim: 4, ScalarType.Float64, 1e-12, seed: 9);
    }

    private static void AssertMatches(Tensor bias, int heads, int headDim, ScalarType dtype, double tolerance, int seed)
    {
        long b = bias.shape[0], t = bias.shape[2], tk = bias.shape[3];
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        var q = randn([b, heads, t, headDim], ScalarType.Float64, generator: generator);
        var k = randn([b, heads, tk, headDim], ScalarType.Float64, generator: generator);
        var v = randn([b, heads, tk, headDim], ScalarType.Float64, generator: generator);
        var fused = DecoderAttention.Attend(q.to(dtype), k.to(dtype), v.to(dtype), bias.to(dtype)).to(ScalarType.Float64);

        double[] qa = q.data<double>().ToArray(), ka = k.data<double>().ToArray(), va = v.data<double>().ToArray();
        double[] ba = bias.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        double[] actual = fused.contiguous().data<double>().ToArray();
        double scale = 1.0 / Math.Sqrt(headDim), worst = 0;
        for (long bi = 0; bi < b; bi++)
            for (int h = 0; h < heads; h++)
                for (long i = 0; i < t; i++)
                {
                    // A fully masked query row (a left pad) gets the lowest finite bias everywhere: softmax is uniform there.
                    var logits = new double[tk];
                    for (long j = 0; j < tk; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < headDim; e++)
                            dot += qa[((bi * heads + h) * t + i) * headDim + e] * ka[((bi * heads + h) * tk + j) * headDim + e];
                        logits[j] = dot * scale + ba[(bi * t + i) * tk + j];
                    }
                    double max = logits.Max(), sum = 0;
                    var p = logits.Select(l => Math.Exp(l - max)).ToArray();
                    sum = p.Sum();
                    for (int e = 0; e < headDim; e++)
                    {
                        double expected = 0;
                        for (long j = 0; j < tk; j++) expected += p[j] / sum * va[((bi * heads + h) * tk + j) * headDim + e];
                        double got = actual[((bi * heads + h) * t + i) * headDim + e];
                        if (ba[(bi * t + i) * tk + (tk - 1)] < -1e30 && AllMasked(ba, (bi * t + i) * tk, tk)) continue; // pad query rows: unused
                        worst = Math.Max(worst, Math.Abs(got - expected));
                    }
                }
        Assert.True(worst < tolerance, $"max |fused − explicit| = {worst:G3} (tolerance {tolerance:G3})");
    }

    private static bool AllMasked(double[] bias, long offset, long count)
    {
        for (long j = 0; j < count; j++) if (bias[offset + j] > -1e30) return false;
        return true;
    }
}
