using MathNet.Numerics.LinearAlgebra;
using ReplaceMe.Core.Estimation;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

public class LeastSquaresSolverTests
{
    [Fact]
    public void Rank_deficient_gram_is_damped_relative_to_its_mean_diagonal()
    {
        // A = VᵀV with V of rank 3 in 6 dimensions: positive semi-definite and exactly singular.
        var v = Gaussian(3, 6, 1);
        var a = v.TransposeThisAndMultiply(v);
        var b = a * Gaussian(6, 6, 2); // B in the range of A, as XᵀZ always is
        using var gram = ToTensor(a);
        using var cross = ToTensor(b);
        var solution = LeastSquaresSolver.Solve(gram, cross, ridge: 0, TransformStructure.General);

        double meanDiagonal = a.Diagonal().Average();
        Assert.False(solution.UsedPseudoInverse);
        Assert.InRange(solution.Damping, 0.99e-10 * meanDiagonal, 1.01e-4 * meanDiagonal);
        // Damped solve ≈ minimum-norm solution (MathNet pseudo-inverse) up to the tiny damping bias.
        var expected = a.PseudoInverse() * b;
        Assert.True(RelativeDifference(ToMatrix(solution.Transform), expected) < 1e-4);
    }

    [Fact]
    public void Indefinite_matrix_falls_back_to_the_pseudo_inverse()
    {
        // Not a Gram matrix (a negative eigenvalue far beyond any damping): only the pseudo-inverse can answer.
        var a = Matrix<double>.Build.DenseOfDiagonalArray([4.0, 2.0, -3.0, 1.0]);
        var b = Gaussian(4, 4, 3);
        using var gram = ToTensor(a);
        using var cross = ToTensor(b);
        var solution = LeastSquaresSolver.Solve(gram, cross, ridge: 0, TransformStructure.General);

        Assert.True(solution.UsedPseudoInverse);
        Assert.Equal(0.0, solution.Damping);
        Assert.True(RelativeDifference(ToMatrix(solution.Transform), a.PseudoInverse() * b) < 1e-12);
        Assert.Equal(double.PositiveInfinity, solution.ConditionEstimate);
    }
}
