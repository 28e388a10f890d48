using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// No transform: the cut is simply removed (the UIDL baseline, Gromov et al.). The fit still streams the batches to
/// report how much plain removal loses: cosine before (= after) on a seeded sample, and ‖X − Z‖/‖Z‖ over all tokens.
/// </summary>
public sealed class IdentityEstimator : ITransformEstimator
{
    /// <summary>Creates the estimator.</summary>
    /// <param name="diagnosticRows">Rows kept (seeded uniform sample) for the cosine figure; 0 skips it.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="diagnosticRows"/> is negative.</exception>
    public IdentityEstimator(int diagnosticRows = 4096)
    {
        TorchRuntime.EnsureLoaded();
        ArgumentOutOfRangeException.ThrowIfNegative(diagnosticRows);
        DiagnosticRows = diagnosticRows;
    }

    /// <summary>Rows kept for the cosine figure.</summary>
    public int DiagnosticRows { get; }

    /// <inheritdoc />
    public string Name => "identity";

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?> { ["diagnostic_rows"] = DiagnosticRows };

    /// <inheritdoc />
    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        return new IdentityFit(cut, hiddenSize, DiagnosticRows, context);
    }
}
