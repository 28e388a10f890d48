using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>T from the normal equations, plus how it was obtained.</summary>
/// <param name="Transform">T, <c>[d, d]</c> float64 on the device of the sums.</param>
/// <param name="Damping">Everything added to XᵀX's diagonal: ridge, extra ridge and stabilising damping.</param>
/// <param name="UsedPseudoInverse">True when the pseudo-inverse replaced the Cholesky solve.</param>
/// <param name="ConditionEstimate">Condition number of the matrix as posed (XᵀX + ridge·I); +∞ when singular; null if not computed.</param>
internal sealed record LeastSquaresSolution(Tensor Transform, double Damping, bool UsedPseudoInverse, double? ConditionEstimate);

/// <summary>
/// Solves min_T ‖X·T − Z‖² + α‖T‖² from A = XᵀX and B = XᵀZ in float64 (METHOD.md §11 P3): Cholesky of A + (α + δ)I
/// with δ = 0 first, then δ = 1e-10·mean(diag A) growing ×10 up to 1e-4·mean(diag A) when the factorisation fails or
/// gives a non-finite T, then the pseudo-inverse. Never an explicit inverse.
/// </summary>
internal static class LeastSquaresSolver
{
    internal const double FirstRelativeDamping = 1e-10;
    internal const double LastRelativeDamping = 1e-4;

    /// <summary>Solves for T with the given structure. <paramref name="gram"/> and <paramref name="cross"/> are <c>[d, d]</c> float64.</summary>
    /// <param name="gram">A = XᵀX.</param>
    /// <param name="cross">B = XᵀZ.</param>
    /// <param name="ridge">User ridge α plus any ridge the caller adds (e.g. for an underdetermined fit).</param>
    /// <param name="structure">Shape constraint on T.</param>
    public static LeastSquaresSolution Solve(Tensor gram, Tensor cross, double ridge, TransformStructure structure) => structure switch
    {
        TransformStructure.General => SolveGeneral(gram, cross, ridge),
        TransformStructure.Diagonal => SolveDiagonal(gram, cross, ridge),
        TransformStructure.Orthonormal => SolveOrthonormal(cross),
        _ => throw new ArgumentOutOfRangeException(nameof(structure), structure, "Unknown transform structure."),
    };

    private static LeastSquaresSolution SolveGeneral(Tensor gram, Tensor cross, double ridge)
    {
        using var scope = NewDisposeScope();
        long d = gram.shape[0];
        var eye = torch.eye(d, dtype: ScalarType.Float64, device: gram.device); // [d, d]
        using var ridgeScalar = ridge.ToScalar(); // held until the calls return (see HeldScalars)
        var posed = gram.add(eye.mul(ridgeScalar), HeldScalars.One); // A + αI
        double meanDiagonal = gram.diagonal().mean().item<double>();
        double? condition = Condition(posed);

        var dampings = new List<double> { 0 };
        if (meanDiagonal > 0)
            for (double r = FirstRelativeDamping; r <= LastRelativeDamping * 1.0001; r *= 10) dampings.Add(r * meanDiagonal);
        foreach (double delta in dampings)
        {
            using var attempt = NewDisposeScope();
            using var deltaScalar = delta.ToScalar();
            var matrix = delta == 0 ? posed : posed.add(eye.mul(deltaScalar), HeldScalars.One); // [d, d]
            var (factor, info) = linalg.cholesky_ex(matrix); // factor: lower-triangular [d, d]
            if (info.item<int>() != 0 || NumericallySingular(factor, matrix)) continue;
            var t = cholesky_solve(cross, factor); // [d, d]
            if (!t.isfinite().all().item<bool>()) continue;
            return new LeastSquaresSolution(t.MoveToOuterDisposeScope().MoveToOuterDisposeScope(), ridge + delta, false, condition);
        }
        // Cholesky failed even with the largest damping (indefinite through rounding, or non-finite sums):
        // the symmetric pseudo-inverse gives the minimum-norm solution of the posed system.
        var pseudo = linalg.pinv(posed, hermitian: true).mm(cross); // [d, d]
        return new LeastSquaresSolution(pseudo.MoveToOuterDisposeScope(), ridge, true, condition);
    }

    /// <summary>
    /// True when a Cholesky factor "succeeded" only through rounding. L_jj² / M_jj is the share of column j's energy
    /// not explained by the columns before it (scale-invariant, so massive-activation columns do not trigger it); below
    /// d·ε that share is rounding noise, and the solve would put huge entries along (near-)null directions: harmless
    /// for X·T on the calibration rows, ruinous once T is folded into low-precision weights.
    /// </summary>
    private static bool NumericallySingular(Tensor factor, Tensor matrix)
    {
        using var scope = NewDisposeScope();
        using var tiny = double.Epsilon.ToScalar();
        var diagonal = factor.diagonal();
        var share = diagonal.mul(diagonal).div(matrix.diagonal().clamp_min(tiny)); // [d]
        return share.min().item<double>() < factor.shape[0] * MachineEpsilon;
    }

    private const double MachineEpsilon = 2.220446049250313e-16; // float64 unit roundoff ×2 (numpy's finfo.eps)

    private static LeastSquaresSolution SolveDiagonal(Tensor gram, Tensor cross, double ridge)
    {
        using var scope = NewDisposeScope();
        using var ridgeScalar = ridge.ToScalar(); // held until the call returns (see HeldScalars)
        var denominator = gram.diagonal().add(ridgeScalar, HeldScalars.One); // [d]: A_jj + α
        var numerator = cross.diagonal(); // [d]: B_jj
        // A dimension that is exactly zero in every row (and no ridge) leaves t_j free: take the minimum-norm 0.
        var dead = denominator.le(HeldScalars.Zero);
        bool anyDead = dead.any().item<bool>();
        var t = torch.where(dead, torch.zeros_like(numerator), numerator.div(torch.where(dead, torch.ones_like(denominator), denominator)));
        var live = denominator.masked_select(dead.logical_not());
        double? condition = live.numel() == 0 ? null
            : anyDead ? double.PositiveInfinity
            : live.max().item<double>() / live.min().item<double>();
        return new LeastSquaresSolution(torch.diag(t).MoveToOuterDisposeScope(), ridge, anyDead, condition);
    }

    private static LeastSquaresSolution SolveOrthonormal(Tensor cross)
    {
        using var scope = NewDisposeScope();
        // Orthogonal Procrustes: maximise tr(TᵀXᵀZ) over orthonormal T; with XᵀZ = UΣVᵀ the optimum is T = UVᵀ.
        var (u, _, vh) = linalg.svd(cross, fullMatrices: false); // u, vh: [d, d]
        return new LeastSquaresSolution(u.mm(vh).MoveToOuterDisposeScope(), 0, false, null);
    }

    /// <summary>λ_max / λ_min of a symmetric matrix (+∞ when λ_min ≤ 0), from its eigenvalues.</summary>
    internal static double? Condition(Tensor symmetric)
    {
        using var scope = NewDisposeScope();
        if (!symmetric.isfinite().all().item<bool>()) return null;
        var eigenvalues = linalg.eigvalsh(symmetric); // [d], ascending
        double min = eigenvalues[0].item<double>();
        double max = eigenvalues[-1].item<double>();
        return min <= 0 ? double.PositiveInfinity : max / min;
    }
}
