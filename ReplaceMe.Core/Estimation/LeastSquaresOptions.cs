namespace ReplaceMe.Core.Estimation;

/// <summary>Shape constraint on the least-squares transform T.</summary>
public enum TransformStructure
{
    /// <summary>Any d×d matrix (the paper's default).</summary>
    General,
    /// <summary>A diagonal matrix: each hidden unit is rescaled on its own (paper Table 7).</summary>
    Diagonal,
    /// <summary>An orthonormal matrix (orthogonal Procrustes, paper Table 7); ridge does not apply.</summary>
    Orthonormal,
}

/// <summary>Options of <see cref="LeastSquaresEstimator"/>.</summary>
/// <param name="Ridge">Ridge strength α ≥ 0 added to XᵀX's diagonal (paper Table 5; 0 = plain least squares).</param>
/// <param name="Structure">Shape constraint on T.</param>
/// <param name="AllowUnderdetermined">
/// When fewer valid tokens than the hidden size were seen: false raises <see cref="PruningException"/>; true logs a
/// warning and adds a ridge of 1e-6·mean(diag XᵀX) so the minimum-norm-like solution is well defined.
/// </param>
/// <param name="DiagnosticRows">
/// Rows kept (seeded uniform sample) to report cosine similarity before and after the transform; 0 skips it.
/// </param>
public sealed record LeastSquaresOptions(
    double Ridge = 0,
    TransformStructure Structure = TransformStructure.General,
    bool AllowUnderdetermined = false,
    int DiagnosticRows = 4096)
{
    /// <summary>Throws when an option is out of range or two options contradict each other.</summary>
    /// <exception cref="ArgumentException">The offending option is named.</exception>
    public void Validate()
    {
        if (!double.IsFinite(Ridge) || Ridge < 0)
            throw new ArgumentException($"Ridge must be a finite number ≥ 0; got {Ridge}.", nameof(Ridge));
        if (!Enum.IsDefined(Structure))
            throw new ArgumentException($"Unknown transform structure {Structure}.", nameof(Structure));
        if (Structure == TransformStructure.Orthonormal && Ridge != 0)
            throw new ArgumentException("Ridge has no effect on an orthonormal transform (its norm is fixed); use Ridge = 0 with Structure = Orthonormal.", nameof(Ridge));
        if (DiagnosticRows < 0)
            throw new ArgumentException($"DiagnosticRows must be ≥ 0; got {DiagnosticRows}.", nameof(DiagnosticRows));
    }
}
