using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// An independent float64 forward of a Llama-family decoder on plain arrays, written from the Hugging Face equations
/// (not from the library's code): one unpadded sequence, positions 0..T−1.
/// </summary>
internal sealed class ReferenceDecoder
{
    private readonly ModelConfig _c;
    private readonly IReadOnlyDictionary<string, double[]> _w;

    public ReferenceDecoder(ModelConfig config, IReadOnlyDictionary<string, double[]> weights)
    {
        _c = config;
        _w = weights;
    }

    /// <summary>Per layer: block input, MLP output and block output, each [T][d].</summary>
    public List<(double[][] Input, double[][] Mlp, double[][] Output)> Trace { get; } = [];

    /// <summary>Logits [T][vocab] for <paramref name="ids"/>.</summary>
    public double[][] Forward(int[] ids)
    {
        Trace.Clear();
        int d = _c.HiddenSize, T = ids.Length;
        var emb = _w["model.embed_tokens.weight"];
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = emb.AsSpan(ids[t] * d, d).ToArray();
        for (int layer = 0; layer < _c.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}.";
            var input = x;
            var attn = Attention(x.Select(r => RmsNorm(r, _w[p + "input_layernorm.weight"])).ToArray(), p + "self_attn.");
            var y = new double[T][];
            for (int t = 0; t < T; t++) y[t] = Add(x[t], attn[t]);
            var mlp = new double[T][];
            for (int t = 0; t < T; t++) mlp[t] = Mlp(RmsNorm(y[t], _w[p + "post_attention_layernorm.weight"]), p + "mlp.");
            x = new double[T][];
            for (int t = 0; t < T; t++) x[t] = Add(y[t], mlp[t]);
            Trace.Add((input, mlp, x));
        }
        var head = _c.TieWordEmbeddings ? emb : _w["lm_head.weight"];
        return x.Select(r => MatVec(head, RmsNorm(r, _w["model.norm.weight"]), _c.VocabSize, d, null)).ToArray();
    }

    private double[][] Attention(double[][] h, string p)
    {
        int T = h.Length, H = _c.NumAttentionHeads, Hkv = _c.NumKeyValueHeads, hd = _c.HeadDim, d = _c.HiddenSize;
        double[]? Bias(string name) => _w.TryGetValue(p + name, out var b) ? b : null;
        var q = h.Select(r => MatVec(_w[p + "q_proj.weight"], r, H * hd, d, Bias("q_proj.bias"))).ToArray();
        var k = h.Select(r => MatVec(_w[p + "k_proj.weight"], r, Hkv * hd, d, Bias("k_proj.bias"))).ToArray();
        var v = h.Select(r => MatVec(_w[p + "v_proj.weight"], r, Hkv * hd, d, Bias("v_proj.bias"))).ToArray();
        var invFreq = ReferenceRope.InverseFrequencies(_c);
        for (int t = 0; t < T; t++)
        {
            for (int head = 0; head < H; head++) NormAndRotate(q[t], head * hd, t, p + "q_norm.weight", invFreq);
            for (int head = 0; head < Hkv; head++) NormAndRotate(k[t], head * hd, t, p + "k_norm.weight", invFreq);
        }
        var ctx = new double[T][];
        double scale = 1 / Math.Sqrt(hd);
        for (int t = 0; t < T; t++)
        {
            ctx[t] = new double[H * hd];
            for (int head = 0; head < H; head++)
            {
                int kvHead = head / (H / Hkv);
                var scores = new List<(int J, double S)>();
                for (int j = 0; j <= t; j++)
                {
                    if (_c.SlidingWindow is int w && t - j >= w) continue;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[t][head * hd + i] * k[j][kvHead * hd + i];
                    scores.Add((j, s * scale));
                }
                double max = scores.Max(s => s.S), sum = scores.Sum(s => Math.Exp(s.S - max));
                foreach (var (j, s) in scores)
                {
                    double a = Math.Exp(s - max) / sum;
                    for (int i = 0; i < hd; i++) ctx[t][head * hd + i] += a * v[j][kvHead * hd + i];
                }
            }
        }
        return ctx.Select(r => MatVec(_w[p + "o_proj.weight"], r, d, H * hd, Bias("o_proj.bias"))).ToArray();
    }

    private void NormAndRotate(double[] vec, int offset, int position, string normKey, double[] invFreq)
    {
        int hd = _c.HeadDim, half = hd / 2;
        if (_c.QkNorm)
        {
            var normed = RmsNorm(vec.AsSpan(offset, hd).ToArray(), _w[normKey]);
            Array.Copy(normed, 0, vec, offset, hd);
        }
        for (int i = 0; i < half; i++)
        {
            // Rotate-half pairs: (i, i + hd/2) rotated by angle position * invFreq[i].
            double angle = position * invFreq[i], c = Math.Cos(angle), s = Math.Sin(angle);
            double a = vec[offset + i], b = vec[offset + half + i];
            vec[offset + i] = a * c - b * s;
            vec[offset + half + i] = b * c + a * s;
        }
    }

    private double[] Mlp(double[] h, string p)
    {
        int d = _c.HiddenSize, ff = _c.IntermediateSize;
        double[]? Bias(string name) => _w.TryGetValue(p + name, out var b) ? b : null;
        var gate = MatVec(_w[p + "gate_proj.weight"], h, ff, d, Bias("gate_proj.bias"));
        var up = MatVec(_w[p + "up_proj.weight"], h, ff, d, Bias("up_proj.bias"));
        var inner = new double[ff];
        for (int i = 0; i < ff; i++) inner[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
        return MatVec(_w[p + "down_proj.weight"], inner, d, ff, Bias("down_proj.bias"));
    }

    private double[] RmsNorm(double[] x, double[] weight)
    {
        double ms = x.Sum(v => v * v) / x.Length, r = 1 / Math.Sqrt(ms + _c.RmsNormEps);
        return x.Select((v, i) => v * r * weight[i]).ToArray();
    }

    private static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    /// <summary>W [rows, cols] (row-major, HF Linear layout [out, in]) times x, plus optional bias.</summary>
    private static double[] MatVec(double[] w, double[] x, int rows, int cols, double[]? bias)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = bias?[r] ?? 0;
            for (int c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
            y[r] = s;
        }
        return y;
    }
}

/// <summary>RoPE frequencies written from the Hugging Face formulas (default, linear, llama3).</summary>
internal static class ReferenceRope
{
    public static double[] InverseFrequencies(ModelConfig c)
    {
        int hd = c.HeadDim;
        var inv = Enumerable.Range(0, hd / 2).Select(i => Math.Pow(c.RopeTheta, -(2.0 * i) / hd)).ToArray();
        var s = c.RopeScaling;
        if (s is null) return inv;
        if (s.Type == "linear") return inv.Select(f => f / s.Factor).ToArray();
        if (s.Type != "llama3") throw new NotSupportedException(s.Type);
        double lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        double highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        return inv.Select(f =>
        {
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highWavelen) return f;
            if (wavelen > lowWavelen) return f / s.Factor;
            double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            return (1 - smooth) * f / s.Factor + smooth * f;
        }).ToArray();
    }
}
