using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

/// <summary>
/// The default cosine optimiser (full-batch L-BFGS, Eq. 7, from the identity) against an independent float64 (MathNet)
/// computation of the objective and of its gradient.
/// </summary>
public class CosineLbfgsTests
{
    private const int D = 12;
    private const int N = 1500;

    /// <summary>
    /// target = Y + X·T* + noise whose size varies a lot from row to row: least squares weighs rows by their squared
    /// error, the cosine weighs every row alike, so the two optima differ.
    /// </summary>
    private static (Matrix<double> X, Matrix<double> Y, Matrix<double> Target) Heteroscedastic(int seed)
    {
        var x = Gaussian(N, D, seed);
        var truth = Matrix<double>.Build.DenseIdentity(D) * 0.4 + Gaussian(D, D, seed + 1, 0.3);
        var y = Gaussian(N, D, seed + 2, 0.5);
        var noise = Gaussian(N, D, seed + 3);
        var random = new Random(seed + 4);
        for (int i = 0; i < N; i++)
        {
            double scale = i % 10 == 0 ? 4.0 : 0.05 * random.NextDouble(); // a tenth of the rows carry most of the noise
            noise.SetRow(i, noise.Row(i) * scale);
        }
        return (x, y, y + x * truth + noise);
    }

    /// <summary>mean_i cos(yᵢ + xᵢ·T, targetᵢ) in float64 (Eq. 7; Eq. 8 with y = 0 and target = Z).</summary>
    private static double Objective(Matrix<double> x, Matrix<double> y, Matrix<double> target, Matrix<double> t) =>
        MeanRowCosine(y + x * t, target);

    /// <summary>∂/∂T of mean_i cos(pᵢ, tᵢ), pᵢ = yᵢ + xᵢ·T: (1/N) Σ xᵢᵀ (tᵢ/(‖pᵢ‖‖tᵢ‖) − cosᵢ·pᵢ/‖pᵢ‖²), in float64.</summary>
    private static Matrix<double> Gradient(Matrix<double> x, Matrix<double> y, Matrix<double> target, Matrix<double> t)
    {
        var p = y + x * t;
        var g = Matrix<double>.Build.Dense(N, D);
        for (int i = 0; i < N; i++)
        {
            var pi = p.Row(i);
            var ti = target.Row(i);
            double pn = pi.L2Norm(), tn = ti.L2Norm(), cos = pi.DotProduct(ti) / (pn * tn);
            g.SetRow(i, ti / (pn * tn) - pi * (cos / (pn * pn)));
        }
        return x.TransposeThisAndMultiply(g) / N;
    }

    [Fact]
    public void Default_from_the_identity_beats_least_squares_on_the_cosine_reaches_a_stationary_point_and_the_least_squares_scale()
    {
        var (x, y, target) = Heteroscedastic(400);
        var z = target - y;
        var zero = Matrix<double>.Build.Dense(N, D);
        var leastSquares = x.TransposeThisAndMultiply(x).Solve(x.TransposeThisAndMultiply(z)); // float64 closed form
        var identity = Matrix<double>.Build.DenseIdentity(D);

        var result = Fit(new CosineEstimator(new CosineOptions(MaxRows: N, DiagnosticRows: N)), x, y, target, batches: 3, context: new EstimationContext(Seed: 2));
        var t = ToMatrix(result.Transform!);
        // Eq. 8, the default objective: mean cos(X·T, Z).
        double cosine = Objective(x, zero, z, t), lstsq = Objective(x, zero, z, leastSquares), start = Objective(x, zero, z, identity);

        Assert.True(cosine > lstsq + 1e-3, $"cosine fit {cosine} vs least squares {lstsq} (identity {start})");
        Assert.Equal(1 - cosine, result.Report.LossCurve![^1], 5);                       // the curve's last point is the final loss
        double gradient = Gradient(x, zero, z, t).FrobeniusNorm(), atStart = Gradient(x, zero, z, identity).FrobeniusNorm();
        Assert.True(gradient < 1e-3 * atStart, $"‖∇‖ at the fit {gradient:G3}, at the identity {atStart:G3}");
        // Eq. 8 does not fix T's scale; the default puts T where α = 1 minimises ‖α·X·T − Z‖², i.e. ⟨X·T, Z⟩ = ‖X·T‖².
        var mapped = x * t;
        Assert.Equal(1.0, mapped.PointwiseMultiply(z).Enumerate().Sum() / mapped.PointwiseMultiply(mapped).Enumerate().Sum(), 6);
        Assert.Equal(Objective(x, y, target, t), result.Report.CosineAfter!.Value, 6);  // the report's figure is Eq. 7's
        Assert.Contains(result.Report.Notes!, n => n.Contains("L-BFGS", StringComparison.Ordinal) && n.Contains("converged", StringComparison.Ordinal));
        Assert.Contains(result.Report.Notes!, n => n.Contains("T scaled by", StringComparison.Ordinal));
    }

    [Fact]
    public void Exact_loss_unscaled_beats_least_squares_on_its_own_objective()
    {
        var (x, y, target) = Heteroscedastic(405);
        var z = target - y;
        var leastSquares = x.TransposeThisAndMultiply(x).Solve(x.TransposeThisAndMultiply(z));
        var options = new CosineOptions(Loss: CosineLoss.Exact, MaxRows: N, DiagnosticRows: N) { LeastSquaresScale = false };
        var result = Fit(new CosineEstimator(options), x, y, target, batches: 2);
        var t = ToMatrix(result.Transform!);

        double cosine = Objective(x, y, target, t), lstsq = Objective(x, y, target, leastSquares);
        Assert.True(cosine > lstsq + 1e-3, $"Eq. 7: cosine fit {cosine} vs least squares {lstsq}");
        Assert.Equal(cosine, result.Report.CosineAfter!.Value, 6);
        Assert.True(Gradient(x, y, target, t).FrobeniusNorm() < 1e-3 * Gradient(x, y, target, Matrix<double>.Build.DenseIdentity(D)).FrobeniusNorm());
    }

    [Fact]
    public void Full_batch_loss_never_rises_and_starts_at_the_identitys_loss()
    {
        var (x, y, target) = Heteroscedastic(410);
        var result = Fit(new CosineEstimator(new CosineOptions(Loss: CosineLoss.Exact, MaxRows: N, DiagnosticRows: 0)), x, y, target, batches: 2);
        var curve = result.Report.LossCurve!;

        Assert.InRange(curve.Count, 3, CosineOptions.LossCurvePoints + 2);
        Assert.Equal(1 - Objective(x, y, target, Matrix<double>.Build.DenseIdentity(D)), curve[0], 5); // Eq. 7 at T = I
        for (int i = 1; i < curve.Count; i++) Assert.True(curve[i] <= curve[i - 1], $"point {i}: {curve[i - 1]} -> {curve[i]}");
        Assert.True(curve[^1] < 0.5 * curve[0], $"loss {curve[0]} -> {curve[^1]}");
    }

    [Fact]
    public void Approximate_loss_recovers_a_noiseless_map_up_to_its_scale_and_the_scale_step_fixes_it()
    {
        // Eq. 8 compares X·T with Z by angle only, so T* is recoverable up to a positive factor.
        var x = Gaussian(N, D, 420);
        var truth = Matrix<double>.Build.DenseIdentity(D) * 0.2 + Gaussian(D, D, 421, 0.5);
        var y = Gaussian(N, D, 422, 0.5);
        var result = Fit(new CosineEstimator(new CosineOptions(Loss: CosineLoss.Approximate, MaxRows: N, DiagnosticRows: 0) { LeastSquaresScale = false }), x, y, y + x * truth);
        var t = ToMatrix(result.Transform!);
        var scaled = ToMatrix(Fit(new CosineEstimator(new CosineOptions(MaxRows: N, DiagnosticRows: 0)), x, y, y + x * truth).Transform!);

        Assert.True(RelativeDifference(scaled, truth) < 1e-3, $"with the least-squares scale T = T*: {RelativeDifference(scaled, truth)}");
        double alignment = t.PointwiseMultiply(truth).Enumerate().Sum() / (t.FrobeniusNorm() * truth.FrobeniusNorm());
        Assert.True(alignment > 0.9999, $"cos(T, T*) = {alignment}");
        Assert.True(MeanRowCosine(x * t, x * truth) > 0.9999);
    }

    [Fact]
    public void Spilled_rows_give_the_identical_transform()
    {
        var (x, y, target) = Heteroscedastic(430);
        var options = new CosineOptions(BatchSize: 256, MaxRows: N, DiagnosticRows: 0) { Steps = 15 };
        var inMemory = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 1));
        // The budget covers L-BFGS's full working set and 4 KB of rows: the rest spills.
        long budget = CosineFit.WorkingBytesFor(D, 2, 256, 0, CosineLbfgs.Plan.Full) + 4096;
        var spilled = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 1, MemoryBudgetBytes: budget));

        Assert.Contains(spilled.Report.Notes!, n => n.Contains("spilled", StringComparison.Ordinal));
        Assert.True(inMemory.Transform!.equal(spilled.Transform!).all().item<bool>());
    }

    [Fact]
    public void Cancellation_during_the_iterations_is_honoured()
    {
        var (x, y, target) = Heteroscedastic(440);
        using var cancel = new CancellationTokenSource();
        var progress = new CancelOnLoss(cancel);
        using var fit = new CosineEstimator(new CosineOptions(DiagnosticRows: 0) { Steps = 20 }).Begin(Cut, D, new EstimationContext(Progress: progress));
        Feed(fit, x, y, target);
        Assert.ThrowsAny<OperationCanceledException>(() => fit.Complete(cancel.Token));
        Assert.True(progress.Seen, "an iteration was reported before the cancellation");
    }

    private sealed class CancelOnLoss(CancellationTokenSource source) : IProgress<PruningProgress>
    {
        public bool Seen { get; private set; }

        public void Report(PruningProgress value)
        {
            if (value.Loss is null) return;
            Seen = true;
            source.Cancel();
        }
    }
}
