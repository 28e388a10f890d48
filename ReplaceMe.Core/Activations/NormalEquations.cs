using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>
/// Streaming float64 sums for the least-squares problem min_T ‖X·T − Z‖²: A = XᵀX (<c>[d, d]</c>), B = XᵀZ
/// (<c>[d, d]</c>), ‖Z‖²_F and the row count. Memory is O(d²) whatever the number of rows, which is the point:
/// calibration tokens are never stored. With these sums the residual of any T follows without the rows:
/// ‖X·T − Z‖² = tr(TᵀAT) − 2·tr(TᵀB) + ‖Z‖².
/// </summary>
internal sealed class NormalEquations : IDisposable
{
    private readonly Tensor _a; // [d, d] float64
    private readonly Tensor _b; // [d, d] float64
    private readonly Tensor _zSquared; // [] float64 (kept on the device to avoid a sync per batch)
    private bool _disposed;

    /// <summary>Creates zeroed sums of width <paramref name="hiddenSize"/> on <paramref name="device"/>.</summary>
    public NormalEquations(int hiddenSize, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        ArgumentNullException.ThrowIfNull(device);
        HiddenSize = hiddenSize;
        Device = device;
        _a = zeros(hiddenSize, hiddenSize, ScalarType.Float64, device).DetachFromDisposeScope();
        _b = zeros(hiddenSize, hiddenSize, ScalarType.Float64, device).DetachFromDisposeScope();
        _zSquared = zeros([], ScalarType.Float64, device).DetachFromDisposeScope();
    }

    /// <summary>Width d of the rows.</summary>
    public int HiddenSize { get; }

    /// <summary>Device the sums live on.</summary>
    public Device Device { get; }

    /// <summary>Rows added so far.</summary>
    public long Rows { get; private set; }

    /// <summary>XᵀX, <c>[d, d]</c> float64 (owned by this object).</summary>
    public Tensor Gram { get { ThrowIfDisposed(); return _a; } }

    /// <summary>XᵀZ, <c>[d, d]</c> float64 (owned by this object).</summary>
    public Tensor Cross { get { ThrowIfDisposed(); return _b; } }

    /// <summary>Bytes held by the sums (two d×d float64 matrices and a scalar).</summary>
    public long Bytes => 2L * HiddenSize * HiddenSize * sizeof(double) + sizeof(double);

    /// <summary>‖Z‖²_F over all rows added.</summary>
    public double TargetSquaredNorm { get { ThrowIfDisposed(); return _zSquared.item<double>(); } }

    /// <summary>Adds rows: <paramref name="x"/> and <paramref name="z"/> are <c>[N, d]</c>, any float dtype and device.</summary>
    /// <exception cref="ArgumentException">Shapes do not match each other or the width.</exception>
    public void Add(Tensor x, Tensor z)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(z);
        ThrowIfDisposed();
        if (x.dim() != 2 || z.dim() != 2 || x.shape[1] != HiddenSize || z.shape[1] != HiddenSize || x.shape[0] != z.shape[0])
            throw new ArgumentException(
                $"Expected X and Z as [N, {HiddenSize}] with the same N; got [{string.Join(", ", x.shape)}] and [{string.Join(", ", z.shape)}].", nameof(z));
        if (x.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var x64 = x.to(ScalarType.Float64, Device); // [N, d]
        var z64 = z.to(ScalarType.Float64, Device); // [N, d]
        var xt = x64.t(); // [d, N]
        _a.addmm_(xt, x64);
        _b.addmm_(xt, z64);
        _zSquared.add_(HeldScalars.Square(z64).sum(), HeldScalars.One);
        Rows += x.shape[0];
    }

    /// <summary>Adds sums accumulated elsewhere (another calibration shard): XᵀX, XᵀZ (<c>[d, d]</c>), ‖Z‖² and the row count.</summary>
    /// <exception cref="ArgumentException">A matrix is not <c>[d, d]</c>, or the row count is negative.</exception>
    public void AddSums(Tensor gram, Tensor cross, double targetSquaredNorm, long rows)
    {
        ArgumentNullException.ThrowIfNull(gram);
        ArgumentNullException.ThrowIfNull(cross);
        ThrowIfDisposed();
        foreach (var m in new[] { gram, cross })
            if (m.dim() != 2 || m.shape[0] != HiddenSize || m.shape[1] != HiddenSize)
                throw new ArgumentException($"Expected [{HiddenSize}, {HiddenSize}] sums; got [{string.Join(", ", m.shape)}].", nameof(gram));
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        using var scope = NewDisposeScope();
        _a.add_(gram.to(ScalarType.Float64, Device), HeldScalars.One);
        _b.add_(cross.to(ScalarType.Float64, Device), HeldScalars.One);
        _zSquared.add_(torch.tensor(targetSquaredNorm, ScalarType.Float64, Device), HeldScalars.One);
        Rows += rows;
    }

    /// <summary>‖X·T − Z‖²_F for <paramref name="transform"/> (<c>[d, d]</c>) from the sums alone, clamped at 0.</summary>
    /// <remarks>
    /// The identity cancels ‖Z‖² against the other terms, so in float64 the result is accurate to about
    /// 1e-16·‖Z‖² in absolute terms: good for relative residuals above ~1e-7.
    /// </remarks>
    public double ResidualSquaredNorm(Tensor transform)
    {
        ArgumentNullException.ThrowIfNull(transform);
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        var t = transform.to(ScalarType.Float64, Device); // [d, d]
        double quadratic = t.mul(_a.mm(t)).sum().item<double>(); // tr(TᵀAT)
        double cross = t.mul(_b).sum().item<double>(); // tr(TᵀB)
        double value = quadratic - 2 * cross + TargetSquaredNorm;
        return Math.Max(0, value);
    }

    /// <summary>Disposes the sums.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _a.Dispose();
        _b.Dispose();
        _zSquared.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
