using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

/// <summary>
/// The L-BFGS cosine fit under a memory budget: its working set (correction pairs, whitening, gradient, T) is sized
/// from the budget, stays within it, and gives the unbounded run's T; a budget below the minimum is refused up front.
/// </summary>
public class CosineLbfgsMemoryTests
{
    private const int D = 48;
    private const int N = 2400;
    private const int Batch = 256;

    [Fact]
    public void Plan_follows_the_budget_by_hand_derived_sizes()
    {
        // (52 + 2·(H + 1)·bytes per entry)·d² with d = 4096 (d² = 16 777 216): 8 float64 pairs need 196·d² = 3 288 334 336 bytes.
        const long square = 4096L * 4096;
        Assert.Equal(3_288_334_336L, CosineLbfgs.Plan.Full.BytesFor(4096));
        Assert.Equal(CosineLbfgs.Plan.Full, CosineLbfgs.Plan.For(4096, 196 * square));
        // One byte less: float32 pairs, as many as fit: 52 + 8·(H + 1) ≤ 195 → H = 8.
        Assert.Equal(new CosineLbfgs.Plan(8, true), CosineLbfgs.Plan.For(4096, 196 * square - 1));
        // The default 2 GiB budget less a 1024-row Eq. 8 batch (1024·4096·4·12 = 201 326 592 bytes): 116·d² → H = 7.
        Assert.Equal(new CosineLbfgs.Plan(7, true), CosineLbfgs.Plan.For(4096, (2L << 30) - 201_326_592));
        // The minimum is 3 float32 pairs: 84·d².
        Assert.Equal(new CosineLbfgs.Plan(3, true), CosineLbfgs.Plan.For(4096, 84 * square));
        Assert.Null(CosineLbfgs.Plan.For(4096, 84 * square - 1));
    }

    [Fact]
    public void Small_budget_keeps_fewer_float32_pairs_stays_within_it_and_gives_the_unbounded_T()
    {
        var x = Gaussian(N, D, 500);
        var truth = Matrix<double>.Build.DenseIdentity(D) * 0.3 + Gaussian(D, D, 501, 0.2);
        var y = Gaussian(N, D, 502, 0.5);
        var noise = Gaussian(N, D, 503, 0.7);
        var target = y + x * truth + noise;
        var options = new CosineOptions(BatchSize: Batch, MaxRows: N, DiagnosticRows: 0) { Tolerance = 1e-10 };

        var (unbounded, unboundedFit) = Run(options, x, y, target, new EstimationContext(Seed: 4));
        Assert.Equal(CosineLbfgs.Plan.Full, unboundedFit.Plan);

        // Room for 4 float32 pairs and 8 KB of rows: the rest of the 2400·2·48·4 = 921 600 bytes of rows spills.
        var small = new CosineLbfgs.Plan(4, true);
        long budget = CosineFit.WorkingBytesFor(D, 2, Batch, 0, small) + 8192;
        var (bounded, boundedFit) = Run(options, x, y, target, new EstimationContext(Seed: 4, MemoryBudgetBytes: budget));

        Assert.Equal(small, boundedFit.Plan);
        Assert.True(boundedFit.WorkingBytes + boundedFit.RowPeak <= budget, $"working {boundedFit.WorkingBytes} + rows {boundedFit.RowPeak} > budget {budget}");
        Assert.True(boundedFit.RowPeak > 0 && boundedFit.Spilled > 0, "rows were kept up to the budget and the rest spilled");
        // The search's own ledger of live d×d tensors stays within what the plan reserved, in both runs.
        Assert.InRange(boundedFit.SearchPeak, small.BytesFor(D) / 2, small.BytesFor(D));
        Assert.InRange(unboundedFit.SearchPeak, CosineLbfgs.Plan.Full.BytesFor(D) / 2, CosineLbfgs.Plan.Full.BytesFor(D));
        Assert.Contains(bounded.Report.Notes!, n => n.Contains("4 float32 pairs", StringComparison.Ordinal));

        var a = ToMatrix(unbounded.Transform!);
        var b = ToMatrix(bounded.Transform!);
        double difference = (a - b).FrobeniusNorm() / a.FrobeniusNorm();
        Assert.True(difference < 1e-4, $"relative ‖T_bounded − T_unbounded‖ = {difference:G3}");
        Assert.Equal(MeanRowCosine(x * a, target - y), MeanRowCosine(x * b, target - y), 6);
    }

    [Fact]
    public void Budget_below_the_minimum_is_refused_before_any_row_is_stored()
    {
        long need = CosineFit.WorkingBytesFor(D, 2, Batch, 0, CosineLbfgs.Plan.Minimum);
        var estimator = new CosineEstimator(new CosineOptions(BatchSize: Batch, DiagnosticRows: 0));
        var error = Assert.Throws<InsufficientMemoryBudgetException>(() => estimator.Begin(Cut, D, new EstimationContext(MemoryBudgetBytes: need - 1)));
        Assert.Equal(need - 1, error.BudgetBytes);
        Assert.Equal(need, error.RequiredBytes);
        Assert.Contains($"{need - 1:N0} bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("CosineOptimizer.Adam", error.Message, StringComparison.Ordinal);
        // Exactly the minimum is accepted, with the minimum plan.
        using var fit = (CosineFit)estimator.Begin(Cut, D, new EstimationContext(MemoryBudgetBytes: need));
        Assert.Equal(CosineLbfgs.Plan.Minimum, fit.LbfgsPlan);
    }

    private sealed record Figures(CosineLbfgs.Plan? Plan, long WorkingBytes, long RowPeak, long Spilled, long SearchPeak);

    private static (TransformEstimate Estimate, Figures Figures) Run(CosineOptions options, Matrix<double> x, Matrix<double> y, Matrix<double> target, EstimationContext context)
    {
        using var fit = (CosineFit)new CosineEstimator(options).Begin(Cut, D, context);
        Feed(fit, x, y, target, batches: 3);
        var estimate = fit.Complete();
        return (estimate, new Figures(fit.LbfgsPlan, fit.WorkingBytes, fit.Rows.PeakMemoryBytes, fit.Rows.SpilledBytes, fit.LbfgsOutcome!.PeakBytes));
    }
}
