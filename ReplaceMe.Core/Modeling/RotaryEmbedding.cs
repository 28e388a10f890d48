using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Rotary position embedding in Hugging Face's rotate-half convention: the first and second halves of each head
/// are the two coordinates of every rotated pair, and <c>cos</c>/<c>sin</c> tables repeat the frequencies twice.
/// Supports no scaling, <c>linear</c> (positions / factor), <c>llama3</c> (per-frequency smoothing between the low
/// and high frequency wavelengths) and <c>dynamic</c> NTK (base grows once positions exceed the trained length).
/// </summary>
internal sealed class RotaryEmbedding
{
    private readonly ModelConfig _config;
    private readonly double[] _invFreq;

    public RotaryEmbedding(ModelConfig config)
    {
        _config = config;
        _invFreq = ComputeInverseFrequencies(config, config.RopeTheta);
    }

    /// <summary>The rotation frequencies <c>[head_dim / 2]</c> used at positions inside the trained length.</summary>
    public IReadOnlyList<double> InverseFrequencies => _invFreq;

    /// <summary>Throws <see cref="UnsupportedModelException"/> for a scaling type this model does not implement.</summary>
    public static void Validate(ModelConfig config)
    {
        var type = config.RopeScaling?.Type;
        if (type is null or "default" or "linear" or "llama3" or "dynamic") return;
        throw new UnsupportedModelException($"rope_scaling type '{type}' is not supported (supported: linear, llama3, dynamic).");
    }

    /// <summary>
    /// Frequencies 1 / base^(2i/d) (i &lt; d/2, d = head_dim), with linear or llama3 scaling applied. Mirrors
    /// Hugging Face's <c>_compute_default_rope_parameters</c>, <c>_compute_linear_scaling_rope_parameters</c> and
    /// <c>_compute_llama3_parameters</c>.
    /// </summary>
    public static double[] ComputeInverseFrequencies(ModelConfig config, double ropeBase)
    {
        int dim = config.HeadDim;
        var inv = new double[dim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1.0 / Math.Pow(ropeBase, 2.0 * i / dim);
        var scaling = config.RopeScaling;
        if (scaling is null) return inv;
        if (scaling.Type == "linear")
        {
            for (int i = 0; i < inv.Length; i++) inv[i] /= scaling.Factor;
        }
        else if (scaling.Type == "llama3")
        {
            double oldContext = scaling.OriginalMaxPositionEmbeddings;
            double lowFreqWavelen = oldContext / scaling.LowFreqFactor;
            double highFreqWavelen = oldContext / scaling.HighFreqFactor;
            for (int i = 0; i < inv.Length; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowFreqWavelen)
                {
                    inv[i] /= scaling.Factor; // long wavelengths: fully interpolated
                }
                else if (wavelen >= highFreqWavelen)
                {
                    // Medium band: blend between interpolated and original frequencies.
                    double smooth = (oldContext / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / scaling.Factor + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    /// <summary>
    /// cos and sin tables <c>[B, T, head_dim]</c> in <paramref name="dtype"/> for integer positions <c>[B, T]</c>.
    /// The angles are computed in at least float32 (float64 for a float64 model) and then cast, like Hugging Face.
    /// </summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positions, int maxPosition, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var invFreq = _invFreq;
        var scaling = _config.RopeScaling;
        if (scaling?.Type == "dynamic" && maxPosition + 1 > _config.MaxPositionEmbeddings)
        {
            // Dynamic NTK: grow the base with the sequence length once it exceeds the trained context.
            double seqLen = maxPosition + 1, dim = _config.HeadDim;
            double grownBase = _config.RopeTheta * Math.Pow(scaling.Factor * seqLen / _config.MaxPositionEmbeddings - (scaling.Factor - 1), dim / (dim - 2));
            invFreq = ComputeInverseFrequencies(_config with { RopeScaling = null }, grownBase);
        }
        var angleType = Precision.AtLeastFloat32(dtype);
        var freq = tensor(invFreq, [invFreq.Length], ScalarType.Float64, positions.device).to(angleType); // [hd/2]
        var angles = positions.to(angleType).unsqueeze(-1) * freq;                                        // [B, T, hd/2]
        var emb = cat([angles, angles], -1);                                                                // [B, T, hd]
        var cosT = emb.cos().to(dtype);
        var sinT = emb.sin().to(dtype);
        return (cosT.MoveToOuterDisposeScope(), sinT.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates queries or keys <c>[B, H, T, hd]</c> with tables <c>[B, T, hd]</c>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([-x2, x1], -1); // rotate_half
        var result = (x * cos.unsqueeze(1)).add(rotated * sin.unsqueeze(1), HeldScalars.One);
        return result.MoveToOuterDisposeScope();
    }
}
