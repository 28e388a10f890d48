using System.Text.Json.Nodes;
using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>Tiny configs of each family and random weights under the Hugging Face names (written here from the HF layout).</summary>
internal static class TinyModels
{
    public static ModelConfig Llama(int layers = 2, bool tied = false) => new()
    {
        ModelType = "llama", HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = layers, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 8, VocabSize = 50, RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = tied,
        EosTokenIds = [2], BosTokenId = 1,
        Raw = new JsonObject { ["model_type"] = "llama", ["num_hidden_layers"] = layers },
    };

    public static ModelConfig Llama3Scaled() => Llama() with
    {
        RopeTheta = 500000, RopeScaling = new RopeScaling("llama3", 8.0, 1.0, 4.0, 256),
    };

    public static ModelConfig LinearScaled() => Llama() with { RopeScaling = new RopeScaling("linear", 2.5) };

    public static ModelConfig LlamaAllBiases() => Llama() with { QkvBias = true, OutputBias = true, MlpBias = true };

    public static ModelConfig Qwen2() => Llama(tied: true) with { ModelType = "qwen2", QkvBias = true, RopeTheta = 1000000, RmsNormEps = 1e-6 };

    public static ModelConfig Qwen3() => Llama(tied: true) with { ModelType = "qwen3", QkNorm = true, HeadDim = 16 };

    public static ModelConfig Mistral() => Llama() with { ModelType = "mistral", NumKeyValueHeads = 1, SlidingWindow = 4 };

    /// <summary>Every HF key of the config with its shape.</summary>
    public static Dictionary<string, long[]> ExpectedShapes(ModelConfig c)
    {
        long d = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim, ff = c.IntermediateSize;
        var s = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = [c.VocabSize, d], ["model.norm.weight"] = [d] };
        if (!c.TieWordEmbeddings) s["lm_head.weight"] = [c.VocabSize, d];
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            s[p + "input_layernorm.weight"] = [d];
            s[p + "post_attention_layernorm.weight"] = [d];
            s[p + "self_attn.q_proj.weight"] = [q, d];
            s[p + "self_attn.k_proj.weight"] = [kv, d];
            s[p + "self_attn.v_proj.weight"] = [kv, d];
            s[p + "self_attn.o_proj.weight"] = [d, q];
            if (c.QkvBias)
            {
                s[p + "self_attn.q_proj.bias"] = [q];
                s[p + "self_attn.k_proj.bias"] = [kv];
                s[p + "self_attn.v_proj.bias"] = [kv];
            }
            if (c.OutputBias) s[p + "self_attn.o_proj.bias"] = [d];
            if (c.QkNorm)
            {
                s[p + "self_attn.q_norm.weight"] = [c.HeadDim];
                s[p + "self_attn.k_norm.weight"] = [c.HeadDim];
            }
            s[p + "mlp.gate_proj.weight"] = [ff, d];
            s[p + "mlp.up_proj.weight"] = [ff, d];
            s[p + "mlp.down_proj.weight"] = [d, ff];
            if (c.MlpBias)
            {
                s[p + "mlp.gate_proj.bias"] = [ff];
                s[p + "mlp.up_proj.bias"] = [ff];
                s[p + "mlp.down_proj.bias"] = [d];
            }
        }
        return s;
    }

    /// <summary>Random weights: matrices N(0, 0.25²)-ish, norm weights around 1, biases small, so every term matters.</summary>
    public static Dictionary<string, double[]> RandomWeights(ModelConfig c, int seed)
    {
        var rng = new Random(seed);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var w = new Dictionary<string, double[]>();
        foreach (var (key, shape) in ExpectedShapes(c).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var data = new double[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++)
                data[i] = key.EndsWith("norm.weight", StringComparison.Ordinal) ? 1 + 0.2 * Gauss()
                    : key.EndsWith(".bias", StringComparison.Ordinal) ? 0.1 * Gauss()
                    : key.Contains("embed", StringComparison.Ordinal) ? Gauss()
                    : Gauss() / Math.Sqrt(shape[^1]);
            w[key] = data;
        }
        return w;
    }

    public static Dictionary<string, Tensor> ToTensors(ModelConfig c, Dictionary<string, double[]> weights, ScalarType dtype = ScalarType.Float64)
    {
        var shapes = ExpectedShapes(c);
        return weights.ToDictionary(kv => kv.Key, kv => tensor(kv.Value, shapes[kv.Key], ScalarType.Float64).to(dtype));
    }

    /// <summary>A model with the given weights, computing in <paramref name="dtype"/>.</summary>
    public static DecoderModel Build(ModelConfig c, Dictionary<string, double[]> weights, ScalarType dtype = ScalarType.Float64)
    {
        var model = DecoderModel.Create(c, new ModelLoadOptions(DType: dtype), seed: 1);
        var tensors = ToTensors(c, weights);
        model.LoadStateDict(tensors);
        foreach (var t in tensors.Values) t.Dispose();
        return model;
    }

    public static int[] RandomIds(ModelConfig c, int length, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => rng.Next(3, c.VocabSize)).ToArray();
    }

    /// <summary>Logits [B, T, V] of a forward on rows with padding on the given side.</summary>
    public static (Tensor Ids, Tensor Mask) Pad(IReadOnlyList<int[]> rows, bool left, int padId = 0)
    {
        int width = rows.Max(r => r.Length);
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        for (int b = 0; b < rows.Count; b++)
        {
            int offset = left ? width - rows[b].Length : 0;
            for (int t = 0; t < width; t++) ids[b * width + t] = padId;
            for (int t = 0; t < rows[b].Length; t++)
            {
                ids[b * width + offset + t] = rows[b][t];
                mask[b * width + offset + t] = 1;
            }
        }
        return (tensor(ids, [rows.Count, width]), tensor(mask, [rows.Count, width]));
    }

    public static double[,] Logits2D(Tensor logits3d, int row)
    {
        using var r = logits3d[row].to(ScalarType.Float64).contiguous();
        var flat = r.data<double>().ToArray();
        int t = (int)r.shape[0], v = (int)r.shape[1];
        var result = new double[t, v];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(double));
        return result;
    }

    /// <summary>Largest |a − b| relative to the largest |b|.</summary>
    public static double MaxRelativeError(double[,] actual, double[][] expected, int actualOffset = 0)
    {
        double maxDiff = 0, maxRef = 0;
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[t + actualOffset, v] - expected[t][v]));
                maxRef = Math.Max(maxRef, Math.Abs(expected[t][v]));
            }
        return maxDiff / maxRef;
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }
}
