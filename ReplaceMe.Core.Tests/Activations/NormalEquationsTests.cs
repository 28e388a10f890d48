using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Tests.Estimation;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Activations;

public class NormalEquationsTests
{
    [Fact]
    public void Sums_match_MathNet_and_the_residual_identity_matches_a_direct_computation()
    {
        var x = EstimationData.Gaussian(200, 8, 1);
        var z = EstimationData.Gaussian(200, 8, 2, 3);
        var t = EstimationData.Gaussian(8, 8, 3);
        using var sums = new NormalEquations(8, CPU);
        sums.Add(EstimationData.ToTensor(x.SubMatrix(0, 120, 0, 8), ScalarType.Float32), EstimationData.ToTensor(z.SubMatrix(0, 120, 0, 8)));
        sums.Add(EstimationData.ToTensor(x.SubMatrix(120, 80, 0, 8)), EstimationData.ToTensor(z.SubMatrix(120, 80, 0, 8)));

        var x32 = x.Clone();
        var x32Top = EstimationData.ToMatrix(EstimationData.ToTensor(x.SubMatrix(0, 120, 0, 8), ScalarType.Float32));
        x32.SetSubMatrix(0, 0, x32Top);
        Assert.Equal(200, sums.Rows);
        Assert.True(EstimationData.RelativeDifference(EstimationData.ToMatrix(sums.Gram), x32.TransposeThisAndMultiply(x32)) < 1e-13);
        Assert.True(EstimationData.RelativeDifference(EstimationData.ToMatrix(sums.Cross), x32.TransposeThisAndMultiply(z)) < 1e-13);
        Assert.Equal(Math.Pow(z.FrobeniusNorm(), 2), sums.TargetSquaredNorm, 8);
        using var tt = EstimationData.ToTensor(t);
        double direct = Math.Pow((x32 * t - z).FrobeniusNorm(), 2);
        Assert.Equal(direct, sums.ResidualSquaredNorm(tt), 7);
        Assert.Equal(2L * 8 * 8 * 8 + 8, sums.Bytes);
    }

    [Fact]
    public void Mismatched_rows_are_rejected()
    {
        using var sums = new NormalEquations(4, CPU);
        using var a = zeros(3, 4);
        using var b = zeros(2, 4);
        using var c = zeros(3, 5);
        Assert.Throws<ArgumentException>(() => sums.Add(a, b));
        Assert.Throws<ArgumentException>(() => sums.Add(a, c));
        Assert.Equal(0, sums.Rows);
    }
}
