using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// Each kind of temporary-Scalar mistake once, so that <see cref="ScalarLifetimeGuardTests"/> can prove the guard sees
/// them. Never called.
/// </summary>
#pragma warning disable IDE0051, CA1823
internal sealed class ScalarMisuse
{
    private readonly Scalar _held = 2.0.ToScalar();

    public static Tensor Square_(Tensor x) => x.square();

    public static Tensor Sum_(Tensor x, Tensor y) => x + y;

    public static Tensor ImplicitAlpha_(Tensor x, Tensor y) => x.add(y, 0.5);

    public static Tensor ClampDouble_(Tensor x) => x.clamp_min(1e-6);

    public static Tensor LocalHold_(Tensor x)
    {
        var s = 3.0.ToScalar();
        return x.mul(s);
    }

    public Tensor Fine_(Tensor x, Tensor y) => x.mul(y).add(y, _held).pow(_held);
}
