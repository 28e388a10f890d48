using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using Xunit.Abstractions;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// The method on a real model: stories15M (6 blocks), calibrated on its own seeded stories, scored on other
/// seeded stories. Removing blocks with a fitted transform must beat plain removal of the same blocks clearly.
/// Numbers are printed (run with console verbosity "detailed") and recorded in docs/results.md.
/// </summary>
public class Stories15MEndToEndTests(ITestOutputHelper output)
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    private (double Perplexity, PruningResultSummary Summary) PruneAndScore(int n, string estimator, string selector = "angular")
    {
        if (Fixture.Runs.TryGetValue((n, estimator, selector), out var done)) return done;
        using var model = DecoderModel.FromPretrained(Fixture.ModelDir);
        var batches = Fixture.CalibrationBatches();
        try
        {
            var options = new PruningOptions
            {
                BlocksPerCut = n, Seed = 5,
                Estimator = estimator switch
                {
                    "identity" => new IdentityEstimator(),
                    // The paper's schedule from the least-squares start (the table's "cosine (Adam, LS init)" rows).
                    "cosine" => new CosineEstimator(CosineOptions.Paper with { Init = CosineInit.LeastSquares }),
                    _ => new LeastSquaresEstimator(),
                },
                Selector = selector == "replacement-aware" ? new ReplacementAwareSelector() : new AngularDistanceSelector(),
                HeldOutFraction = selector == "replacement-aware" ? 0.25 : 0.2,
            };
            using var result = new ReplaceMePruner().Prune(model, batches, options);
            double ppl = Stories15MTestModel.Perplexity(model, Fixture.HeldOutIds);
            var summary = new PruningResultSummary(result.SelectorName, result.EstimatorName, result.Cuts[0], result.Timings["total"].TotalSeconds);
            output.WriteLine($"| {summary.Estimator} | {summary.Selector} | {n} | {summary.Cut} | {ppl:F2} | {ppl / Fixture.OriginalPerplexity:F2} | {summary.Seconds:F1} s |");
            Fixture.Runs[(n, estimator, selector)] = (ppl, summary);
            return (ppl, summary);
        }
        finally { PipelineFixtures.DisposeAll(batches); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Least_squares_and_cosine_clearly_beat_plain_removal_of_the_same_blocks(int n)
    {
        output.WriteLine($"original perplexity {Fixture.OriginalPerplexity:F3} (setup {Fixture.SetupSeconds:F0} s)");
        var identity = PruneAndScore(n, "identity");
        var lstsq = PruneAndScore(n, "lstsq");
        var cosine = PruneAndScore(n, "cosine");

        Assert.Equal(identity.Summary.Cut, lstsq.Summary.Cut);   // same selector, same cut
        Assert.Equal(identity.Summary.Cut, cosine.Summary.Cut);
        Assert.True(Fixture.OriginalPerplexity < lstsq.Perplexity);
        Assert.True(lstsq.Perplexity < 0.75 * identity.Perplexity, $"lstsq {lstsq.Perplexity:F2} vs identity {identity.Perplexity:F2}");
        Assert.True(cosine.Perplexity < 0.75 * identity.Perplexity, $"cosine {cosine.Perplexity:F2} vs identity {identity.Perplexity:F2}");
    }

    [Fact]
    public void Replacement_aware_cut_is_no_worse_than_the_distance_cut_for_two_blocks()
    {
        var distance = PruneAndScore(2, "lstsq");
        var aware = PruneAndScore(2, "lstsq", "replacement-aware");
        Assert.True(aware.Perplexity < 1.1 * distance.Perplexity, $"replacement-aware {aware.Perplexity:F2} vs distance {distance.Perplexity:F2}");
    }
}

internal sealed record PruningResultSummary(string Selector, string Estimator, BlockCut Cut, double Seconds);
