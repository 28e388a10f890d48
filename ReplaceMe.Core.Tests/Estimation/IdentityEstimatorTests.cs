using ReplaceMe.Core.Estimation;
using static ReplaceMe.Core.Tests.Estimation.EstimationData;

namespace ReplaceMe.Core.Tests.Estimation;

public class IdentityEstimatorTests
{
    [Fact]
    public void Plain_removal_has_no_transform_and_reports_the_loss_of_removing()
    {
        const int n = 300, d = 10;
        var x = Gaussian(n, d, 1);
        var y = Gaussian(n, d, 2);
        var z = x * Gaussian(d, d, 3);
        var target = y + z;
        var result = Fit(new IdentityEstimator(diagnosticRows: n), x, y, target, batches: 3);

        Assert.Null(result.Transform);
        Assert.Equal("identity", result.Report.Estimator);
        Assert.Equal(n, result.Report.Tokens);
        Assert.Equal(MeanRowCosine(y + x, target), result.Report.CosineBefore!.Value, 6); // sample rows are stored as float32
        Assert.Equal(result.Report.CosineBefore, result.Report.CosineAfter);
        Assert.Equal((x - z).FrobeniusNorm() / z.FrobeniusNorm(), result.Report.RelativeResidual!.Value, 10);
    }

    [Fact]
    public void Bounded_sample_keeps_at_most_the_requested_rows()
    {
        var x = Gaussian(500, 6, 4);
        var result = Fit(new IdentityEstimator(diagnosticRows: 50), x, x, x * 2, batches: 5);
        Assert.Contains(result.Report.Notes!, s => s.Contains("sample of 50 rows", StringComparison.Ordinal));
        Assert.Equal(500, result.Report.Tokens);
    }
}
