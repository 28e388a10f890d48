using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// The one place where ReplaceMe.Core turns numbers into TorchSharp <see cref="Scalar"/>s.
/// <para>
/// TorchSharp 0.107 hands a Scalar's raw handle to LibTorch without keeping the managed object alive. A temporary
/// Scalar (an implicit number → Scalar conversion, or one TorchSharp makes inside a convenience overload such as
/// <c>square()</c> = <c>pow(2)</c>, <c>a + b</c> = <c>add(b, 1)</c>, <c>add(Scalar)</c>, <c>arange(stop)</c> or
/// <c>normal(mean, std, size)</c>) can therefore be finalized, and its native memory freed, while LibTorch still
/// reads it: intermittent <c>Scalar.h</c> asserts, or silently wrong values, under GC pressure.
/// </para>
/// <para>
/// Core uses the process-lifetime constants below, Scalars stored in fields that outlive the calls, or the helpers
/// below, each of which holds its Scalars in a <c>using</c> scope until LibTorch has returned. The test
/// <c>ScalarLifetimeGuardTests</c> reads Core's compiled IL and fails on any other Scalar creation and on any call of
/// a TorchSharp method that makes a temporary Scalar (derived from TorchSharp's own IL).
/// </para>
/// </summary>
internal static class HeldScalars
{
    /// <summary>0, held for the process lifetime.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>1, held for the process lifetime (the alpha of an exact <c>a + b</c>).</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>−1, held for the process lifetime.</summary>
    public static readonly Scalar MinusOne = (-1).ToScalar();

    /// <summary>π, held for the process lifetime.</summary>
    public static readonly Scalar Pi = Math.PI.ToScalar();

    /// <summary>A Scalar for a field that lives as long as its owner (dispose it with the owner).</summary>
    /// <remarks>Store the result straight into a field: the guard accepts a created Scalar only there.</remarks>
    public static Scalar Hold(double value) => value.ToScalar();

    /// <summary><c>a + b</c> (LibTorch's add with alpha 1).</summary>
    public static Tensor Sum(Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a + alpha·b</c> in one LibTorch call.</summary>
    public static Tensor AddScaled(Tensor a, Tensor b, double alpha)
    {
        using var s = alpha.ToScalar();
        return a.add(b, s);
    }

    /// <summary>In place <c>x ← x + alpha·b</c> (<paramref name="b"/> may have a narrower floating dtype); returns <paramref name="x"/>.</summary>
    public static Tensor AddScaledInPlace(Tensor x, Tensor b, double alpha)
    {
        using var s = alpha.ToScalar();
        return x.add_(b, s);
    }

    /// <summary><c>x + value</c>.</summary>
    public static Tensor Plus(Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.add(s, One);
    }

    /// <summary><c>x + value</c> for an integer value (keeps integer dtypes integer).</summary>
    public static Tensor Plus(Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.add(s, One);
    }

    /// <summary><c>x · value</c>.</summary>
    public static Tensor Times(Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.mul(s);
    }

    /// <summary><c>x · value</c> for an integer value (keeps integer dtypes integer).</summary>
    public static Tensor Times(Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.mul(s);
    }

    /// <summary>In place <c>x ← x · value</c>; returns <paramref name="x"/>.</summary>
    public static Tensor TimesInPlace(Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.mul_(s);
    }

    /// <summary>In place <c>x ← x + value · a / b</c>; returns <paramref name="x"/>.</summary>
    public static Tensor AddCDivInPlace(Tensor x, Tensor a, Tensor b, double value)
    {
        using var s = value.ToScalar();
        return x.addcdiv_(a, b, s);
    }

    /// <summary>Element-wise <c>x²</c> as <c>x · x</c> (TorchSharp's <c>square()</c> is <c>pow(2)</c> with a temporary Scalar).</summary>
    public static Tensor Square(Tensor x) => x.mul(x);

    /// <summary><c>x &lt; value</c> element-wise.</summary>
    public static Tensor LessThan(Tensor x, long value)
    {
        using var s = value.ToScalar();
        return x.lt(s);
    }

    /// <summary><c>max(x, value)</c> element-wise.</summary>
    public static Tensor ClampMin(Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.clamp_min(s);
    }

    /// <summary>Copy of <paramref name="x"/> with <paramref name="value"/> where <paramref name="mask"/> is true.</summary>
    public static Tensor MaskedFill(Tensor x, Tensor mask, double value)
    {
        using var s = value.ToScalar();
        return x.masked_fill(mask, s);
    }

    /// <summary><c>[start, start + 1, …, stop − 1]</c> as int64 on <paramref name="device"/>.</summary>
    public static Tensor Arange(long start, long stop, Device device)
    {
        using var first = start.ToScalar();
        using var end = stop.ToScalar();
        return arange(first, end, One, ScalarType.Int64, device);
    }

    /// <summary>Normal samples with the given mean and standard deviation, drawn as <c>randn · std + mean</c>.</summary>
    public static Tensor Normal(double mean, double std, long[] shape, ScalarType dtype, Device device, Generator? generator)
    {
        using var s = std.ToScalar();
        using var m = mean.ToScalar();
        return randn(shape, dtype, device, generator: generator).mul_(s).add_(m, One);
    }
}
