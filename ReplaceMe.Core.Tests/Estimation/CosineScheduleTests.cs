using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

/// <summary>The cosine estimator's step count and learning-rate schedule, and that the default converges from the identity.</summary>
public class CosineScheduleTests
{
    [Fact]
    public void Steps_follow_the_data_size_with_a_floor_and_the_paper_preset_has_none()
    {
        var options = new CosineOptions { Optimizer = CosineOptimizer.Adam };
        Assert.Equal(1000, options.StepsFor(5_000));                  // 10 epochs × 5 batches = 50 < 1000
        Assert.Equal(10 * 300, options.StepsFor(300 * 1024));          // 10 epochs × 300 batches
        Assert.Equal(10 * 301, options.StepsFor(300 * 1024 + 1));      // a partial batch counts
        Assert.Equal(77, (options with { Steps = 77 }).StepsFor(1_000_000));
        Assert.Equal(10 * 5, CosineOptions.Paper.StepsFor(5_000));     // the paper: 10 epochs, whatever the size
        Assert.Equal(1e-4, CosineOptions.Paper.LearningRate);
        Assert.Equal(1024, CosineOptions.Paper.BatchSize);
        Assert.Equal(CosineInit.Identity, CosineOptions.Paper.Init);
        Assert.Equal(CosineSchedule.Constant, CosineOptions.Paper.Schedule);
        Assert.Equal(CosineOptimizer.Adam, CosineOptions.Paper.Optimizer);
        Assert.Equal(CosineLoss.Approximate, CosineOptions.Paper.Loss);
        Assert.Equal(CosineOptions.DefaultLbfgsIterations, new CosineOptions().StepsFor(5_000)); // L-BFGS: an iteration cap
        Assert.Equal(40, new CosineOptions { Steps = 40 }.StepsFor(5_000));
    }

    [Fact]
    public void Warmup_is_linear_then_the_rate_decays_as_a_half_cosine_to_zero()
    {
        var options = new CosineOptions(LearningRate: 2e-3) { Optimizer = CosineOptimizer.Adam, WarmupFraction = 0.1 };
        const int steps = 101; // warm-up ⌈10.1⌉ = 11 steps, then 90 steps of decay
        Assert.Equal(2e-3 / 11, options.LearningRateAt(0, steps), 15);
        Assert.Equal(2e-3 * 6 / 11, options.LearningRateAt(5, steps), 15);
        Assert.Equal(2e-3, options.LearningRateAt(10, steps), 15);   // end of warm-up
        Assert.Equal(2e-3, options.LearningRateAt(11, steps), 15);   // first decay step: cos(0)
        Assert.InRange(options.LearningRateAt(55, steps), 1e-3, 1.03e-3);   // 44 of 89 decay steps: just above half the peak
        Assert.Equal(0, options.LearningRateAt(100, steps), 15);     // last step: cos(π)
        for (int s = 12; s < steps; s++) Assert.True(options.LearningRateAt(s, steps) <= options.LearningRateAt(s - 1, steps));
        Assert.Equal(1e-4, CosineOptions.Paper.LearningRateAt(0, 50));
        Assert.Equal(1e-4, CosineOptions.Paper.LearningRateAt(49, 50));
    }

    [Fact]
    public void Schedule_options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { MinSteps = -1 }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { Steps = 0 }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { WarmupFraction = 1 }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { WarmupFraction = double.NaN }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { Schedule = (CosineSchedule)7 }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { Optimizer = (CosineOptimizer)7 }));
        Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { Tolerance = 0 }));
    }

    [Fact]
    public void Adam_settings_are_refused_with_lbfgs_instead_of_ignored()
    {
        var lr = Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(LearningRate: 1e-3)));
        Assert.Equal("LearningRate", lr.ParamName);
        Assert.Equal("Epochs", Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions(Epochs: 3))).ParamName);
        Assert.Equal("Schedule", Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { Schedule = CosineSchedule.Constant })).ParamName);
        Assert.Equal("MinSteps", Assert.Throws<ArgumentException>(() => new CosineEstimator(new CosineOptions { MinSteps = 10 })).ParamName);
        Assert.Throws<ArgumentException>(() => new CosineEstimator(CosineOptions.Paper with { Optimizer = CosineOptimizer.Lbfgs }));
        _ = new CosineEstimator(new CosineOptions(LearningRate: 1e-3, Epochs: 3) { Optimizer = CosineOptimizer.Adam }); // fine with Adam
    }

    /// <summary>
    /// Few rows (2 batches) and a map far from the identity: the paper's 20 steps at lr 1e-4 leave T near I, Adam's
    /// default schedule reaches the cosine of the float64 least-squares solution (MathNet), the optimum up to the small noise.
    /// </summary>
    [Fact]
    public void Adam_default_schedule_converges_from_the_identity_where_the_paper_setting_does_not()
    {
        const int d = 16, n = 2048;
        var x = Gaussian(n, d, 300);
        var truth = Matrix<double>.Build.DenseIdentity(d) * 0.3 + Gaussian(d, d, 301, 0.3);
        var y = Gaussian(n, d, 302, 0.5);
        var z = x * truth + Gaussian(n, d, 303, 0.05);
        var leastSquares = x.TransposeThisAndMultiply(x).Solve(x.TransposeThisAndMultiply(z)); // float64 closed form
        double best = MeanRowCosine(x * leastSquares, z), start = MeanRowCosine(x, z);

        var paper = Fit(new CosineEstimator(CosineOptions.Paper with { DiagnosticRows = 0 }), x, y, y + z, batches: 2);
        var converged = Fit(new CosineEstimator(new CosineOptions(Loss: CosineLoss.Approximate, DiagnosticRows: 0) { Optimizer = CosineOptimizer.Adam }), x, y, y + z, batches: 2);
        double paperCosine = MeanRowCosine(x * ToMatrix(paper.Transform!), z);
        double defaultCosine = MeanRowCosine(x * ToMatrix(converged.Transform!), z);

        Assert.True(best - start > 0.2, $"the planted map must be far from I: {start} vs {best}");
        Assert.True(paperCosine < start + 0.1 * (best - start), $"paper setting {paperCosine} (start {start}, optimum {best})");
        Assert.True(defaultCosine > best - 1e-3, $"default schedule {defaultCosine} vs least squares {best}");
        Assert.Equal(CosineOptions.LossCurvePoints, converged.Report.LossCurve!.Count); // 1000 steps in 20 windows
        Assert.True(converged.Report.LossCurve[^1] < 0.1 * converged.Report.LossCurve[0]);
    }
}
