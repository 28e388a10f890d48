using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>SwiGLU feed-forward: <c>down_proj(silu(gate_proj(x)) * up_proj(x))</c>.</summary>
internal sealed class DecoderMlp : nn.Module<Tensor, Tensor>
{
    public DecoderMlp(ModelConfig config, Device device, ScalarType dtype) : base(nameof(DecoderMlp))
    {
        GateProj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        UpProj = nn.Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        DownProj = nn.Linear(config.IntermediateSize, config.HiddenSize, config.MlpBias, device, dtype);
        register_module("gate_proj", GateProj);
        register_module("up_proj", UpProj);
        register_module("down_proj", DownProj);
    }

    public Linear GateProj { get; }
    public Linear UpProj { get; }
    public Linear DownProj { get; }

    protected override void RegisterComponents() { }

    /// <summary><c>[B, T, d]</c> → <c>[B, T, d]</c>.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var inner = nn.functional.silu(GateProj.forward(input)) * UpProj.forward(input); // [B, T, d_ff]
        return DownProj.forward(inner).MoveToOuterDisposeScope();
    }
}
