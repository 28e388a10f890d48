using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>The <c>model.</c> part of a causal LM: <c>embed_tokens</c>, <c>layers</c>, <c>norm</c>.</summary>
internal sealed class DecoderBody : nn.Module
{
    public DecoderBody(ModelConfig config, Device device, ScalarType dtype) : base(nameof(DecoderBody))
    {
        EmbedTokens = nn.Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype);
        Layers = new BlockList(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new DecoderBlock(config, i, device, dtype)));
        Norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        register_module("embed_tokens", EmbedTokens);
        register_module("layers", Layers);
        register_module("norm", Norm);
    }

    public Embedding EmbedTokens { get; }
    public BlockList Layers { get; }
    public RmsNorm Norm { get; }

    protected override void RegisterComponents() { }
}
