using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Root-mean-square norm as Hugging Face computes it: upcast to (at least) float32, mean of squares over the last
/// dimension, multiply by rsqrt(var + eps), cast back to the input dtype, then scale by <c>weight</c>.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    // TorchSharp passes a Scalar's raw handle to native code without keeping the Scalar alive, so a temporary
    // created by an implicit double → Scalar conversion can be finalized during the call (seen as an internal assert
    // in a notebook). Constants used on every forward are therefore held for the module's lifetime.
    private readonly Scalar _epsScalar;

    public RmsNorm(long size, double eps, Device device, ScalarType dtype) : base(nameof(RmsNorm))
    {
        _epsScalar = eps.ToScalar();
        Weight = new Parameter(ones(size, dtype, device), requires_grad: false);
        register_parameter("weight", Weight);
    }

    /// <summary>Per-channel scale <c>[size]</c>; state-dict key <c>weight</c>.</summary>
    public Parameter Weight { get; }

    /// <summary>Registration is explicit in the constructor so that state-dict keys are exactly the HF names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Normalizes <paramref name="input"/> <c>[..., size]</c> over its last dimension.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var inputType = input.dtype;
        var h = input.to(Precision.AtLeastFloat32(inputType));
        var variance = h.mul(h).mean([-1L], keepdim: true); // not square(): TorchSharp's square() is pow(temporary Scalar 2)
        h = h * rsqrt(variance.add(_epsScalar, HeldScalars.One));
        return (Weight * h.to(inputType)).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the held scalar with the module.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _epsScalar.Dispose();
        base.Dispose(disposing);
    }
}
