using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// The paper's closed-form estimator (Eq. 5–6): T = argmin ‖X·T − Z‖²_F + α‖T‖²_F. Streams XᵀX and XᵀZ in float64
/// (memory O(d²), independent of the number of calibration tokens) and solves with a damped Cholesky factorisation,
/// falling back to the pseudo-inverse; optionally a diagonal or orthonormal T. See docs/estimators.md.
/// </summary>
public sealed class LeastSquaresEstimator : ITransformEstimator
{
    /// <summary>Creates the estimator.</summary>
    /// <param name="options">Options; defaults (plain least squares, general T) when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public LeastSquaresEstimator(LeastSquaresOptions? options = null)
    {
        TorchRuntime.EnsureLoaded();
        Options = options ?? new LeastSquaresOptions();
        Options.Validate();
    }

    /// <summary>The options in use.</summary>
    public LeastSquaresOptions Options { get; }

    /// <inheritdoc />
    public string Name => "lstsq";

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?>
    {
        ["ridge"] = Options.Ridge,
        ["structure"] = Options.Structure.ToString(),
        ["allow_underdetermined"] = Options.AllowUnderdetermined,
        ["diagnostic_rows"] = Options.DiagnosticRows,
    };

    /// <inheritdoc />
    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        return new LeastSquaresFit(cut, hiddenSize, Options, context);
    }
}
