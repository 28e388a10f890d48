using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// One pre-norm decoder block: <c>Y = X + Attn(input_layernorm(X))</c>, <c>M = MLP(post_attention_layernorm(Y))</c>,
/// output <c>Y + M</c>. Children: <c>input_layernorm</c>, <c>self_attn</c>, <c>post_attention_layernorm</c>, <c>mlp</c>.
/// </summary>
internal sealed class DecoderBlock : nn.Module
{
    public DecoderBlock(ModelConfig config, int layerIndex, Device device, ScalarType dtype) : base(nameof(DecoderBlock))
    {
        LayerIndex = layerIndex;
        InputLayerNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        SelfAttention = new DecoderAttention(config, device, dtype);
        PostAttentionLayerNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        Mlp = new DecoderMlp(config, device, dtype);
        register_module("input_layernorm", InputLayerNorm);
        register_module("self_attn", SelfAttention);
        register_module("post_attention_layernorm", PostAttentionLayerNorm);
        register_module("mlp", Mlp);
    }

    /// <summary>Position of the block in the current model; its KV-cache slot. Renumbered when blocks are removed.</summary>
    public int LayerIndex { get; set; }

    public RmsNorm InputLayerNorm { get; }
    public DecoderAttention SelfAttention { get; }
    public RmsNorm PostAttentionLayerNorm { get; }
    public DecoderMlp Mlp { get; }

    protected override void RegisterComponents() { }

    /// <summary>Runs the block on <paramref name="x"/> <c>[B, T, d]</c>; returns the output and the MLP output (both <c>[B, T, d]</c>).</summary>
    public (Tensor Output, Tensor MlpOutput) Forward(Tensor x, DecoderModelData data)
    {
        using var scope = NewDisposeScope();
        var y = x.add(SelfAttention.Forward(InputLayerNorm.forward(x), data, LayerIndex), HeldScalars.One); // explicit alpha: see HeldScalars
        var m = Mlp.forward(PostAttentionLayerNorm.forward(y));
        var output = y.add(m, HeldScalars.One);
        return (output.MoveToOuterDisposeScope(), m.MoveToOuterDisposeScope());
    }
}
