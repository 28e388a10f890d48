using TorchSharp;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Scalars that live for the whole process. TorchSharp 0.107 passes a <see cref="Scalar"/>'s raw handle to native code
/// without keeping the managed object alive, so a temporary made by an implicit number → Scalar conversion can be
/// finalized while LibTorch still reads it (observed as an internal assert in <c>pow</c> in a notebook). Hot paths use
/// these, module fields, or <c>using</c>-scoped scalars instead of temporaries. Note that <c>a + b</c> on two tensors
/// also makes one (TorchSharp's <c>add(target)</c> passes a temporary alpha = 1), so hot paths call
/// <c>a.add(b, HeldScalars.One)</c>; <c>sub(Tensor)</c> and <c>mul</c> take no scalar.
/// </summary>
internal static class HeldScalars
{
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar MinusOne = (-1).ToScalar();
    public static readonly Scalar Pi = Math.PI.ToScalar();
}
