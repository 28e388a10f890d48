using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using TorchSharp;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

public class CosineEstimatorTests
{
    private const int D = 12;
    private const int N = 1500;

    // Adam with a faster schedule than the paper's for a tiny planted problem (constant lr, epochs only); the algorithm is the same.
    private static CosineOptions Fast(CosineLoss loss = CosineLoss.Approximate, CosineInit init = CosineInit.Identity, long? maxRows = null)
        => new(Loss: loss, LearningRate: 2e-2, BatchSize: 128, Epochs: 12, Init: init, MaxRows: maxRows, DiagnosticRows: N)
        { Optimizer = CosineOptimizer.Adam, Schedule = CosineSchedule.Constant, MinSteps = 0, WarmupFraction = 0 };

    /// <summary>Points of the loss curve for <paramref name="steps"/> steps: one per window of ⌈steps / 20⌉ steps.</summary>
    private static int CurvePoints(int steps)
    {
        int window = (steps + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints;
        return (steps + window - 1) / window;
    }

    /// <summary>target = Y + X·T* with T* far from identity, so plain removal is poor and T* is learnable.</summary>
    private static (Matrix<double> X, Matrix<double> Y, Matrix<double> Target, Matrix<double> Truth) Planted(int seed)
    {
        var x = Gaussian(N, D, seed);
        var truth = Matrix<double>.Build.DenseIdentity(D) * 0.5 + Gaussian(D, D, seed + 1, 0.4);
        var y = Gaussian(N, D, seed + 2, 0.5);
        return (x, y, y + x * truth, truth);
    }

    [Theory]
    [InlineData(CosineLoss.Approximate)]
    [InlineData(CosineLoss.Exact)]
    public void Planted_map_is_learned_loss_falls_and_cosine_improves(CosineLoss loss)
    {
        var (x, y, target, _) = Planted(200);
        var result = Fit(new CosineEstimator(Fast(loss)), x, y, target, batches: 3, context: new EstimationContext(Seed: 5));
        var curve = result.Report.LossCurve!;
        var t = ToMatrix(result.Transform!);

        Assert.Equal(CurvePoints(Fast().StepsFor(Math.Min(N, Fast().RowCapFor(D)))), curve.Count);
        Assert.True(curve[^1] < 0.2 * curve[0], $"loss {curve[0]} -> {curve[^1]}");
        for (int e = 1; e < curve.Count; e++) Assert.True(curve[e] < curve[e - 1] * 1.02, $"window {e}: {curve[e - 1]} -> {curve[e]}");
        Assert.True(result.Report.CosineAfter > 0.99, $"after {result.Report.CosineAfter}");
        Assert.True(result.Report.CosineAfter > result.Report.CosineBefore + 0.05);
        Assert.Equal(MeanRowCosine(y + x, target), result.Report.CosineBefore!.Value, 8);
        Assert.Equal(MeanRowCosine(y + x * t, target), result.Report.CosineAfter!.Value, 8);
        Assert.Equal(N, result.Report.Tokens);
        Assert.Equal("cosine", result.Report.Estimator);
    }

    [Fact]
    public void Same_seed_gives_the_identical_transform_and_another_seed_does_not()
    {
        var (x, y, target, _) = Planted(210);
        var options = Fast(maxRows: 600) with { Epochs = 2 };
        var a = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 7));
        var b = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 7));
        var c = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 8));

        Assert.True(a.Transform!.equal(b.Transform!).all().item<bool>());
        Assert.False(a.Transform!.equal(c.Transform!).all().item<bool>());
    }

    [Fact]
    public void Least_squares_start_begins_near_the_optimum()
    {
        var (x, y, target, _) = Planted(220);
        var options = Fast() with { Epochs = 1, LearningRate = 1e-4 };
        var identity = Fit(new CosineEstimator(options), x, y, target);
        var warm = Fit(new CosineEstimator(options with { Init = CosineInit.LeastSquares }), x, y, target);

        Assert.True(warm.Report.LossCurve![0] < 1e-4, $"warm start loss {warm.Report.LossCurve[0]}");
        Assert.True(warm.Report.LossCurve[0] < identity.Report.LossCurve![0] / 100);
    }

    [Fact]
    public void Row_cap_subsamples_deterministically_and_is_reported()
    {
        var (x, y, target, _) = Planted(230);
        var options = Fast(maxRows: 300) with { Epochs = 2 };
        var estimator = new CosineEstimator(options);
        using var fit = estimator.Begin(Cut, D, new EstimationContext(Seed: 3));
        Feed(fit, x, y, target, batches: 4);
        var store = ((CosineFit)fit).Rows;
        Assert.Equal(300, store.RowsStored);
        Assert.Equal(N, store.RowsSeen);
        var result = fit.Complete();

        Assert.Equal(N, result.Report.Tokens);
        Assert.Contains(result.Report.Notes!, n => n.Contains("300 of 1500", StringComparison.Ordinal));
        var again = Fit(estimator, x, y, target, batches: 4, context: new EstimationContext(Seed: 3));
        Assert.True(result.Transform!.equal(again.Transform!).all().item<bool>());
    }

    [Fact]
    public void Tiny_memory_budget_spills_and_gives_the_same_transform()
    {
        var (x, y, target, _) = Planted(240);
        var options = Fast() with { Epochs = 2 };
        var inMemory = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 1));
        var spilled = Fit(new CosineEstimator(options), x, y, target, batches: 2, context: new EstimationContext(Seed: 1, MemoryBudgetBytes: 4096));

        Assert.Contains(spilled.Report.Notes!, n => n.Contains("spilled", StringComparison.Ordinal));
        Assert.Contains(inMemory.Report.Notes!, n => n.Contains("no spill", StringComparison.Ordinal));
        Assert.True(inMemory.Transform!.equal(spilled.Transform!).all().item<bool>());
    }

    [Fact]
    public void Cancellation_is_honoured_and_progress_reports_the_loss()
    {
        var (x, y, target, _) = Planted(250);
        var reports = new List<PruningProgress>();
        var progress = new SynchronousProgress(reports.Add);
        using var fit = new CosineEstimator(Fast() with { Epochs = 2 }).Begin(Cut, D, new EstimationContext(Progress: progress));
        Feed(fit, x, y, target, batches: 2);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => fit.Complete(cancelled.Token));

        var result = fit.Complete();
        var windows = reports.Where(r => r.Loss is not null).ToList();
        Assert.Equal(CurvePoints((Fast() with { Epochs = 2 }).StepsFor(Math.Min(N, Fast().RowCapFor(D)))), windows.Count);
        Assert.All(reports, r => Assert.Equal("estimate", r.Stage));
        Assert.Equal(result.Report.LossCurve!, windows.Select(w => w.Loss!.Value));
        Assert.Equal(1.0, windows[^1].Fraction);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(LearningRate: 0)));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(BatchSize: 0)));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(Epochs: 0)));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(MaxRows: 0)));
        Assert.Equal(4L * 200 * 200, new CosineOptions().RowCapFor(200));
        Assert.Equal(1000, new CosineOptions(MaxRows: 1000).RowCapFor(4096));
        Assert.Equal(CosineOptions.DefaultMaxRowsBound, new CosineOptions().RowCapFor(4096));
    }

    [Fact]
    public void NaN_rows_are_rejected()
    {
        var (x, y, target, _) = Planted(260);
        y[5, 5] = double.NaN;
        var error = Assert.Throws<PruningException>(() => Fit(new CosineEstimator(Fast()), x, y, target));
        Assert.Contains("attention residual of block 2", error.Message);
    }

    private sealed class SynchronousProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }
}
