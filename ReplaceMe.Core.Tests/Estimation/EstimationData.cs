using MathNet.Numerics.Distributions;
using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Estimation;

/// <summary>Random calibration-like data built with MathNet (the reference side) and fed to fits as tensors.</summary>
internal static class EstimationData
{
    public static readonly BlockCut Cut = new(3, 5);

    public static Matrix<double> Gaussian(int rows, int cols, int seed, double scale = 1)
        => Matrix<double>.Build.Random(rows, cols, new Normal(0, scale, new Random(seed)));

    public static Tensor ToTensor(Matrix<double> m, ScalarType dtype = ScalarType.Float64)
    {
        TorchRuntime.EnsureLoaded();
        return tensor(m.ToRowMajorArray(), [m.RowCount, m.ColumnCount], ScalarType.Float64).to(dtype);
    }

    public static Matrix<double> ToMatrix(Tensor t)
    {
        var cpu = t.to(ScalarType.Float64, CPU).contiguous();
        return Matrix<double>.Build.DenseOfRowMajor((int)t.shape[0], (int)t.shape[1], cpu.data<double>().ToArray());
    }

    /// <summary>Feeds X, Y, target (rows split into <paramref name="batches"/> batches) and completes the fit.</summary>
    public static TransformEstimate Fit(ITransformEstimator estimator, Matrix<double> x, Matrix<double> y, Matrix<double> target,
        int batches = 1, EstimationContext? context = null, ScalarType dtype = ScalarType.Float64)
    {
        using var fit = estimator.Begin(Cut, x.ColumnCount, context ?? new EstimationContext());
        Feed(fit, x, y, target, batches, dtype);
        return fit.Complete();
    }

    public static void Feed(ITransformFit fit, Matrix<double> x, Matrix<double> y, Matrix<double> target, int batches = 1, ScalarType dtype = ScalarType.Float64)
    {
        int n = x.RowCount;
        for (int b = 0; b < batches; b++)
        {
            int start = b * n / batches, end = (b + 1) * n / batches;
            if (end == start) continue;
            using var scope = NewDisposeScope();
            fit.Accumulate(
                ToTensor(x.SubMatrix(start, end - start, 0, x.ColumnCount), dtype),
                ToTensor(y.SubMatrix(start, end - start, 0, y.ColumnCount), dtype),
                ToTensor(target.SubMatrix(start, end - start, 0, target.ColumnCount), dtype));
        }
    }

    /// <summary>Mean over rows of cos(a_r, b_r), written out by hand.</summary>
    public static double MeanRowCosine(Matrix<double> a, Matrix<double> b)
    {
        double sum = 0;
        for (int r = 0; r < a.RowCount; r++)
        {
            var u = a.Row(r);
            var v = b.Row(r);
            sum += u.DotProduct(v) / (u.L2Norm() * v.L2Norm());
        }
        return sum / a.RowCount;
    }

    public static double RelativeDifference(Matrix<double> actual, Matrix<double> expected)
        => (actual - expected).FrobeniusNorm() / expected.FrobeniusNorm();
}
