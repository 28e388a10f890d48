using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// What <see cref="DecoderModel"/>'s blocks need beside the residual stream, built once per batch by Embed:
/// positions, the additive attention bias and the RoPE tables. Attached to <see cref="DecoderState.ModelData"/>.
/// </summary>
internal sealed class DecoderModelData : IDisposable
{
    public DecoderModelData(Tensor positions, Tensor maskBias, Tensor cos, Tensor sin, KvCache? cache)
    {
        Positions = positions;
        MaskBias = maskBias;
        Cos = cos;
        Sin = sin;
        Cache = cache;
    }

    /// <summary>Position ids of the new tokens <c>[B, T]</c> int64: cumsum(mask) − 1 clamped at 0 (HF convention).</summary>
    public Tensor Positions { get; }

    /// <summary>Additive attention bias <c>[B, 1, T, Tpast + T]</c>: 0 where allowed, the dtype's lowest finite value elsewhere.</summary>
    public Tensor MaskBias { get; }

    /// <summary>RoPE cosine table <c>[B, T, hd]</c>.</summary>
    public Tensor Cos { get; }

    /// <summary>RoPE sine table <c>[B, T, hd]</c>.</summary>
    public Tensor Sin { get; }

    /// <summary>The KV cache this batch appends to (not owned), or null for a full forward.</summary>
    public KvCache? Cache { get; }

    public void Dispose()
    {
        Positions.Dispose();
        MaskBias.Dispose();
        Cos.Dispose();
        Sin.Dispose();
    }
}
