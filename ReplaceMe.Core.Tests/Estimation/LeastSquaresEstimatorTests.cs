using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

public class LeastSquaresEstimatorTests
{
    private const int D = 24;
    private const int N = 400;

    /// <summary>X, Y, target with target = Y + X·T* + noise; Z = target − Y.</summary>
    private static (Matrix<double> X, Matrix<double> Y, Matrix<double> Target, Matrix<double> Z) Problem(Matrix<double> x, int seed, double noise = 0.1)
    {
        var truth = Matrix<double>.Build.DenseIdentity(x.ColumnCount) + Gaussian(x.ColumnCount, x.ColumnCount, seed + 1, 0.3);
        var y = Gaussian(x.RowCount, x.ColumnCount, seed + 2, 3);
        var z = x * truth + Gaussian(x.RowCount, x.ColumnCount, seed + 3, noise);
        return (x, y, y + z, z);
    }

    [Fact]
    public void General_equals_MathNet_QR_on_random_data()
    {
        var (x, y, target, z) = Problem(Gaussian(N, D, 10), 10);
        var result = Fit(new LeastSquaresEstimator(), x, y, target, batches: 3);
        var expected = x.QR().Solve(z); // independent: orthogonal factorisation of the stacked rows

        Assert.NotNull(result.Transform);
        Assert.Equal([D, D], result.Transform!.shape);
        Assert.Equal(TorchSharp.torch.ScalarType.Float64, result.Transform.dtype);
        Assert.True(RelativeDifference(ToMatrix(result.Transform), expected) < 1e-10);
        Assert.Equal(N, result.Report.Tokens);
        Assert.Equal(0.0, result.Report.Damping);
        Assert.False(result.Report.UsedPseudoInverse);
        Assert.Equal("lstsq", result.Report.Estimator);
    }

    [Fact]
    public void Scaled_columns_and_huge_rows_like_massive_activations_match_MathNet()
    {
        var x = Gaussian(N, D, 20);
        // Massive-activation dims: a few columns 1e3 larger, some 1e-2 smaller; and "attention sink" rows 100x larger.
        for (int r = 0; r < N; r++)
        {
            x[r, 2] *= 1e3; x[r, 7] *= 1e3; x[r, 11] *= 1e-2;
            if (r % 50 == 0) x.SetRow(r, x.Row(r) * 100);
        }
        var (_, y, target, z) = Problem(x, 20);
        var result = Fit(new LeastSquaresEstimator(), x, y, target, batches: 4);
        var expected = x.QR().Solve(z);

        Assert.True(RelativeDifference(ToMatrix(result.Transform!), expected) < 1e-7);
        Assert.True(result.Report.ConditionEstimate > 1e9, $"condition {result.Report.ConditionEstimate}");
    }

    [Fact]
    public void Nearly_collinear_columns_give_the_MathNet_SVD_fit()
    {
        var x = Gaussian(N, D, 30);
        var wobble = Gaussian(N, 1, 31, 1e-6);
        for (int r = 0; r < N; r++) x[r, 1] = x[r, 0] + wobble[r, 0]; // cond(X) ≈ 1e6, cond(XᵀX) ≈ 1e12
        var (_, y, target, z) = Problem(x, 30);
        var result = Fit(new LeastSquaresEstimator(), x, y, target, batches: 2);
        var expected = x.Svd().Solve(z);

        // T is only weakly determined along the near-null direction; the fit (X·T) is what must agree.
        var fitted = x * ToMatrix(result.Transform!);
        var reference = x * expected;
        // Normal equations lose accuracy like cond(X)² ε ≈ 1e-4 here; the residual (stationary at the optimum) agrees far better.
        Assert.True(RelativeDifference(fitted, reference) < 1e-4, $"fit differs by {RelativeDifference(fitted, reference)}");
        double ours = (fitted - z).FrobeniusNorm(), theirs = (reference - z).FrobeniusNorm();
        Assert.True(Math.Abs(ours - theirs) / theirs < 1e-8, $"{ours} vs {theirs}");
    }

    [Fact]
    public void Exactly_singular_gram_falls_back_to_damping_or_pseudo_inverse_and_still_fits()
    {
        var x = Gaussian(N, D, 40);
        for (int r = 0; r < N; r++) { x[r, 5] = x[r, 4]; x[r, 9] = 0; } // duplicate column and a dead unit
        var (_, y, target, z) = Problem(x, 40, noise: 0.05);
        var result = Fit(new LeastSquaresEstimator(), x, y, target);
        var reference = x * (x.PseudoInverse() * z); // MathNet's SVD pseudo-inverse (thresholds zero singular values)

        Assert.True(result.Report.Damping > 0 || result.Report.UsedPseudoInverse, $"a singular XᵀX must not be solved undamped; max |T| = {ToMatrix(result.Transform!).Enumerate().Max(Math.Abs)}");
        Assert.True(result.Report.ConditionEstimate > 1e14, $"condition {result.Report.ConditionEstimate}");
        Assert.True(RelativeDifference(x * ToMatrix(result.Transform!), reference) < 1e-6, $"fit differs by {RelativeDifference(x * ToMatrix(result.Transform!), reference)}");
        Assert.True(ToMatrix(result.Transform!).Enumerate().Max(Math.Abs) < 10, "no huge entries along the null directions");
    }

    [Fact]
    public void Planted_exact_linear_relation_is_recovered_to_1e_8()
    {
        var x = Gaussian(N, D, 50);
        var truth = Gaussian(D, D, 51);
        var y = Gaussian(N, D, 52, 2);
        var result = Fit(new LeastSquaresEstimator(), x, y, y + x * truth, batches: 5);

        Assert.True((ToMatrix(result.Transform!) - truth).Enumerate().Max(Math.Abs) < 1e-8);
        Assert.True(result.Report.RelativeResidual < 1e-6, $"residual {result.Report.RelativeResidual}");
        Assert.True(result.Report.CosineAfter > 0.999999);
        Assert.True(result.Report.CosineAfter > result.Report.CosineBefore);
    }

    [Fact]
    public void Ridge_equals_MathNet_regularised_normal_equations()
    {
        const double alpha = 25;
        var (x, y, target, z) = Problem(Gaussian(N, D, 60), 60);
        var result = Fit(new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: alpha)), x, y, target, batches: 2);
        var posed = x.TransposeThisAndMultiply(x) + alpha * Matrix<double>.Build.DenseIdentity(D);
        var expected = posed.LU().Solve(x.TransposeThisAndMultiply(z));

        Assert.True(RelativeDifference(ToMatrix(result.Transform!), expected) < 1e-10);
        Assert.Equal(alpha, result.Report.Damping);
        // Ridge must actually change the answer (otherwise this test could not fail).
        Assert.True(RelativeDifference(expected, x.QR().Solve(z)) > 1e-4);
    }

    [Fact]
    public void Streaming_in_many_batches_equals_one_batch()
    {
        var (x, y, target, _) = Problem(Gaussian(N, D, 70), 70);
        var one = Fit(new LeastSquaresEstimator(), x, y, target, batches: 1);
        var many = Fit(new LeastSquaresEstimator(), x, y, target, batches: 7);

        Assert.True(RelativeDifference(ToMatrix(many.Transform!), ToMatrix(one.Transform!)) < 1e-12);
        Assert.Equal(one.Report.Tokens, many.Report.Tokens);
        Assert.Equal(one.Report.RelativeResidual!.Value, many.Report.RelativeResidual!.Value, 10);
    }

    [Fact]
    public void Float32_batches_are_accumulated_in_float64()
    {
        var (x, y, target, _) = Problem(Gaussian(N, D, 75), 75);
        var single = Fit(new LeastSquaresEstimator(), x, y, target, dtype: TorchSharp.torch.ScalarType.Float32);
        var x32 = ToMatrix(ToTensor(x, TorchSharp.torch.ScalarType.Float32));
        var z32 = ToMatrix(ToTensor(target, TorchSharp.torch.ScalarType.Float32)) - ToMatrix(ToTensor(y, TorchSharp.torch.ScalarType.Float32));

        Assert.True(RelativeDifference(ToMatrix(single.Transform!), x32.QR().Solve(z32)) < 1e-10);
    }

    [Fact]
    public void Diagonal_structure_equals_the_closed_form_per_unit()
    {
        const double alpha = 3;
        var (x, y, target, z) = Problem(Gaussian(N, D, 80), 80);
        var result = Fit(new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: alpha, Structure: TransformStructure.Diagonal)), x, y, target, batches: 2);
        var t = ToMatrix(result.Transform!);

        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
            {
                double expected = 0;
                if (i == j)
                {
                    double num = 0, den = alpha;
                    for (int r = 0; r < N; r++) { num += x[r, j] * z[r, j]; den += x[r, j] * x[r, j]; }
                    expected = num / den;
                }
                Assert.Equal(expected, t[i, j], 10);
            }
    }

    [Fact]
    public void Orthonormal_structure_is_orthonormal_and_equals_MathNet_Procrustes()
    {
        var x = Gaussian(N, D, 90);
        var rotation = Gaussian(D, D, 91).QR().Q; // a planted orthonormal map
        var y = Gaussian(N, D, 92);
        var z = x * rotation + Gaussian(N, D, 93, 0.2);
        var result = Fit(new LeastSquaresEstimator(new LeastSquaresOptions(Structure: TransformStructure.Orthonormal)), x, y, y + z, batches: 3);
        var t = ToMatrix(result.Transform!);
        var svd = x.TransposeThisAndMultiply(z).Svd();
        var expected = svd.U * svd.VT;

        Assert.True((t.TransposeThisAndMultiply(t) - Matrix<double>.Build.DenseIdentity(D)).Enumerate().Max(Math.Abs) < 1e-10);
        Assert.True(RelativeDifference(t, expected) < 1e-9);
        Assert.True(RelativeDifference(t, rotation) < 0.1);
    }

    [Fact]
    public void Fewer_tokens_than_hidden_size_is_a_clear_error_unless_allowed()
    {
        var (x, y, target, z) = Problem(Gaussian(D - 4, D, 100), 100);
        var error = Assert.Throws<PruningException>(() => Fit(new LeastSquaresEstimator(), x, y, target));
        Assert.Contains("[3, 5)", error.Message);
        Assert.Contains($"{D - 4} valid calibration tokens", error.Message);
        Assert.Contains("AllowUnderdetermined", error.Message);

        var allowed = Fit(new LeastSquaresEstimator(new LeastSquaresOptions(AllowUnderdetermined: true)), x, y, target);
        Assert.True(allowed.Report.Damping > 0);
        Assert.Contains(allowed.Report.Notes!, n => n.Contains("underdetermined", StringComparison.Ordinal));
        Assert.True(allowed.Report.RelativeResidual < 1e-3); // interpolates the few rows
        Assert.True((x * ToMatrix(allowed.Transform!) - z).FrobeniusNorm() / z.FrobeniusNorm() < 1e-3);
    }

    [Fact]
    public void NaN_or_infinite_inputs_are_rejected_naming_the_cut_and_block()
    {
        var (x, y, target, _) = Problem(Gaussian(N, D, 110), 110);
        var bad = x.Clone();
        bad[17, 3] = double.NaN;
        var error = Assert.Throws<PruningException>(() => Fit(new LeastSquaresEstimator(), bad, y, target, batches: 2));
        Assert.Contains("[3, 5)", error.Message);
        Assert.Contains("MLP output of block 2", error.Message);

        var badTarget = target.Clone();
        badTarget[300, 0] = double.PositiveInfinity;
        var error2 = Assert.Throws<PruningException>(() => Fit(new LeastSquaresEstimator(), x, y, badTarget, batches: 2));
        Assert.Contains("output of block 4", error2.Message);
    }

    [Fact]
    public void Overflowing_statistics_give_a_non_finite_transform_error()
    {
        // Finite activations whose squares overflow float64: XᵀX is infinite, no solve can be finite.
        var (x, y, target, _) = Problem(Gaussian(N, D, 120), 120);
        var huge = x * 1e170;
        var error = Assert.Throws<PruningException>(() => Fit(new LeastSquaresEstimator(new LeastSquaresOptions(DiagnosticRows: 0)), huge, y, target));
        Assert.Contains("[3, 5)", error.Message);
        Assert.Contains("NaN or infinite", error.Message);
    }

    [Fact]
    public void Relative_residual_and_cosines_match_direct_computations()
    {
        var (x, y, target, z) = Problem(Gaussian(N, D, 130), 130, noise: 0.5);
        var result = Fit(new LeastSquaresEstimator(new LeastSquaresOptions(DiagnosticRows: N)), x, y, target, batches: 3);
        var t = ToMatrix(result.Transform!);

        double direct = (x * t - z).FrobeniusNorm() / z.FrobeniusNorm();
        Assert.Equal(direct, result.Report.RelativeResidual!.Value, 8);
        // The cosine sample stores float32 rows, hence 6 places.
        Assert.Equal(MeanRowCosine(y + x, target), result.Report.CosineBefore!.Value, 6);
        Assert.Equal(MeanRowCosine(y + x * t, target), result.Report.CosineAfter!.Value, 6);
        Assert.True(result.Report.ConditionEstimate > 1);
        Assert.True(result.Report.Elapsed > TimeSpan.Zero);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: -1)));
        Assert.Throws<ArgumentException>(() => new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: double.NaN)));
        Assert.Throws<ArgumentException>(() => new LeastSquaresEstimator(new LeastSquaresOptions(Ridge: 1, Structure: TransformStructure.Orthonormal)));
        Assert.Throws<ArgumentException>(() => new LeastSquaresEstimator(new LeastSquaresOptions(DiagnosticRows: -1)));
    }

    [Fact]
    public void Completing_without_data_or_with_mismatched_shapes_fails_clearly()
    {
        using var fit = new LeastSquaresEstimator().Begin(Cut, D, new EstimationContext());
        Assert.Throws<PruningException>(() => fit.Complete());
        using var x = ToTensor(Gaussian(10, D, 1));
        using var wrong = ToTensor(Gaussian(9, D, 2));
        Assert.Throws<ArgumentException>(() => fit.Accumulate(x, wrong, x));
    }
}
