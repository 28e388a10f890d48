using ReplaceMe.Core.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Multi-head self-attention with grouped key/value heads (GQA), RoPE, optional q/k/v and output biases and optional
/// per-head q/k RMSNorm (Qwen3, applied before RoPE). Children: <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>,
/// <c>o_proj</c>, and <c>q_norm</c>/<c>k_norm</c> when enabled.
/// </summary>
internal sealed class DecoderAttention : nn.Module
{
    private readonly int _heads, _kvHeads, _headDim;

    public DecoderAttention(ModelConfig config, Device device, ScalarType dtype) : base(nameof(DecoderAttention))
    {
        _heads = config.NumAttentionHeads;
        _kvHeads = config.NumKeyValueHeads;
        _headDim = config.HeadDim;
        QProj = nn.Linear(config.HiddenSize, _heads * _headDim, config.QkvBias, device, dtype);
        KProj = nn.Linear(config.HiddenSize, _kvHeads * _headDim, config.QkvBias, device, dtype);
        VProj = nn.Linear(config.HiddenSize, _kvHeads * _headDim, config.QkvBias, device, dtype);
        OProj = nn.Linear(_heads * _headDim, config.HiddenSize, config.OutputBias, device, dtype);
        register_module("q_proj", QProj);
        register_module("k_proj", KProj);
        register_module("v_proj", VProj);
        register_module("o_proj", OProj);
        if (config.QkNorm)
        {
            QNorm = new RmsNorm(_headDim, config.RmsNormEps, device, dtype);
            KNorm = new RmsNorm(_headDim, config.RmsNormEps, device, dtype);
            register_module("q_norm", QNorm);
            register_module("k_norm", KNorm);
        }
    }

    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OProj { get; }
    public RmsNorm? QNorm { get; }
    public RmsNorm? KNorm { get; }

    protected override void RegisterComponents() { }

    /// <summary>Attends over the batch (and the cached past); <paramref name="x"/> <c>[B, T, d]</c> → <c>[B, T, d]</c>.</summary>
    public Tensor Forward(Tensor x, DecoderModelData data, int layerIndex)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = QProj.forward(x).view(b, t, _heads, _headDim);   // [B, T, H, hd]
        var k = KProj.forward(x).view(b, t, _kvHeads, _headDim); // [B, T, Hkv, hd]
        var v = VProj.forward(x).view(b, t, _kvHeads, _headDim);
        if (QNorm is not null && KNorm is not null)
        {
            q = QNorm.forward(q);
            k = KNorm.forward(k);
        }
        q = RotaryEmbedding.Apply(q.transpose(1, 2), data.Cos, data.Sin); // [B, H, T, hd]
        k = RotaryEmbedding.Apply(k.transpose(1, 2), data.Cos, data.Sin); // [B, Hkv, T, hd]
        v = v.transpose(1, 2);
        if (data.Cache is not null) (k, v) = data.Cache.Append(layerIndex, k, v); // [B, Hkv, Tk, hd]
        k = RepeatKv(k);
        v = RepeatKv(v);
        var context = Attend(q, k, v, data.MaskBias).transpose(1, 2).reshape(b, t, _heads * _headDim); // [B, T, H*hd]
        return OProj.forward(context).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// softmax(q·kᵀ/√hd + bias)·v with LibTorch's fused kernel (no probability tensor in q's dtype is materialised).
    /// <paramref name="q"/> <c>[B, H, T, hd]</c>, <paramref name="k"/> and <paramref name="v"/> <c>[B, H, Tk, hd]</c> (KV heads
    /// already expanded), <paramref name="maskBias"/> <c>[B, 1, T, Tk]</c>, additive, in q's dtype. The bias carries
    /// causality, padding and the sliding window (<see cref="DecoderModel"/>'s BuildMaskBias), so the kernel's own causal
    /// flag stays off; its scale is the default 1/√hd. Returns <c>[B, H, T, hd]</c>.
    /// </summary>
    internal static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor maskBias) =>
        nn.functional.scaled_dot_product_attention(q, k, v, maskBias, 0.0, false);

    /// <summary>Repeats each KV head for its group of query heads: <c>[B, Hkv, T, hd]</c> → <c>[B, H, T, hd]</c>.</summary>
    private Tensor RepeatKv(Tensor kv)
    {
        int groups = _heads / _kvHeads;
        if (groups == 1) return kv;
        long b = kv.shape[0], t = kv.shape[2];
        return kv.unsqueeze(2).expand(b, _kvHeads, groups, t, _headDim).reshape(b, _heads, t, _headDim);
    }
}
