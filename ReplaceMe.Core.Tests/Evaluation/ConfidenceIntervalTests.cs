using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

public class ConfidenceIntervalTests
{
    // Quantiles from statistical tables (R: qt(0.975, 9), qnorm(0.975), qt(0.95, 47)).
    private const double T975Df9 = 2.2621571627982;
    private const double Z975 = 1.9599639845401;
    private const double T95Df47 = 1.677927; // six digits, as tables print it

    [Fact]
    public void Small_samples_use_students_t_with_n_minus_one_degrees_of_freedom()
    {
        var ci = new TaskScore("task", "acc", 0.5, true, StdErr: 0.1, Count: 10).ConfidenceInterval()!.Value;
        Assert.Equal(0.5 - T975Df9 * 0.1, ci.Lower, 9);
        Assert.Equal(0.5 + T975Df9 * 0.1, ci.Upper, 9);
        var ninety = new TaskScore("task", "acc", 0.6, true, StdErr: 0.05, Count: 48).ConfidenceInterval(0.90)!.Value;
        Assert.Equal(0.6 + T95Df47 * 0.05, ninety.Upper, 6);
    }

    [Fact]
    public void Large_or_unknown_counts_use_the_normal_quantile_and_perplexities_the_log_scale()
    {
        var acc = new TaskScore("task", "acc", 0.7, true, StdErr: 0.01, Count: 0).ConfidenceInterval()!.Value;
        Assert.Equal(0.7 + Z975 * 0.01, acc.Upper, 9);
        var ppl = new TaskScore("stories", "ppl", 10, false, StdErr: 1, Count: 5000).ConfidenceInterval()!.Value;
        Assert.Equal(10 * Math.Exp(-Z975 * 0.1), ppl.Lower, 9);
        Assert.Equal(10 * Math.Exp(Z975 * 0.1), ppl.Upper, 9);
        Assert.True(ppl.Lower > 0 && ppl.Upper - 10 > 10 - ppl.Lower);   // asymmetric, positive
        Assert.Null(new TaskScore("task", "acc", 0.7, true).ConfidenceInterval());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskScore("task", "acc", 0.7, true, 0.1, 5).ConfidenceInterval(1.0));
    }
}
