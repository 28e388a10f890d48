using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using Xunit.Abstractions;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// The sweep on the real stories15M (40 self-generated stories, batches of 8: 4 batches profile and fit, the last one is
/// held out). Its n = 1 row must be exactly what a direct <see cref="ReplaceMePruner.Prune(ITransformerAdapter, IReadOnlyList{ReplaceMe.Core.Tokenizers.TokenBatch}, PruningOptions, IProgress{PruningProgress}, Microsoft.Extensions.Logging.ILogger, CancellationToken)"/>
/// gives, and its perplexity must agree with the fixture's own perplexity formula on the held-out stories.
/// </summary>
public class PruningSweepTests(ITestOutputHelper output)
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Rows_match_a_direct_prune_and_the_recommendation_obeys_the_target()
    {
        var stories = Fixture.CalibrationIds.Take(40).ToList();
        var batches = PipelineFixtures.Batches(stories, 8);
        try
        {
            var options = new SweepOptions
            {
                MaxBlocks = 2, Estimators = [new LeastSquaresEstimator(), new IdentityEstimator()], MaxPerplexityIncrease = 1.0, Seed = 4,
            };
            var loads = 0;
            var sweep = PruningSweep.Run(() => { loads++; return DecoderModel.FromPretrained(Fixture.ModelDir); }, batches, options);
            foreach (var r in sweep.Rows) output.WriteLine($"n {r.Blocks} {r.Estimator} {r.Cut} ppl {r.Perplexity:F4} KL {r.MeanKl:F4}");
            output.WriteLine($"original {sweep.OriginalPerplexity:F4}; {sweep.Reason}");
            Assert.Equal(1 + 2 * 2, loads);                       // the original once, then one fresh copy per candidate
            Assert.Equal(4, sweep.Rows.Count);
            Assert.Equal(2, sweep.Profile.MaxLength);             // one profile covering every n

            // A direct prune with n = 1 on the same fit batches: same cut, same perplexity.
            using var direct = DecoderModel.FromPretrained(Fixture.ModelDir);
            var fit = batches.Take(4).ToList();
            using var pruned = new ReplaceMePruner().Prune(direct, fit, new PruningOptions { BlocksPerCut = 1, Seed = 4 });
            var row = sweep.Rows.Single(r => r.Blocks == 1 && r.Estimator == "lstsq");
            Assert.Equal(pruned.Cuts[0], row.Cut);
            double reference = Stories15MTestModel.Perplexity(direct, stories.Skip(32).ToList()); // independent formula, held-out stories
            Assert.Equal(reference, row.Perplexity, 1e-4 * reference);
            Assert.Equal(Stories15MTestModel.Perplexity(Fixture.Model, stories.Skip(32).ToList()), sweep.OriginalPerplexity, 1e-4 * sweep.OriginalPerplexity);

            // The recommendation: the largest n whose best estimator stays within +100 %.
            double limit = 2 * sweep.OriginalPerplexity;
            var best = sweep.BestPerBlocks();
            var meeting = best.Where(r => r.Perplexity <= limit).ToList();
            if (meeting.Count == 0) Assert.Null(sweep.Recommended);
            else
            {
                Assert.NotNull(sweep.Recommended);
                Assert.Equal(meeting.Max(r => r.Blocks), sweep.Recommended!.Blocks);
                Assert.True(sweep.Recommended.Perplexity <= limit);
                Assert.Equal(best.Single(r => r.Blocks == sweep.Recommended.Blocks), sweep.Recommended);
            }
            // Plain removal of two blocks is far worse than least squares on this model (docs/results.md): never recommended.
            Assert.NotEqual(("identity", 2), (sweep.Recommended?.Estimator, sweep.Recommended?.Blocks));
        }
        finally { PipelineFixtures.DisposeAll(batches); }
    }

    [Fact]
    public void Contradictory_or_impossible_targets_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new SweepOptions { MaxPerplexityIncrease = 0.1, RemoveFraction = 0.25 }.Validate(6));
        Assert.Throws<ArgumentException>(() => new SweepOptions { MaxBlocks = 6 }.Validate(6));
        Assert.Throws<ArgumentException>(() => new SweepOptions { MaxBlocks = 1, RemoveFraction = 0.5 }.Validate(6)); // 3 blocks > 1
        Assert.Throws<ArgumentException>(() => new SweepOptions { Selector = new FixedCutSelector(1, 1) }.Validate(6));
        Assert.Throws<ArgumentException>(() => new SweepOptions { Estimators = [new LeastSquaresEstimator(), new LeastSquaresEstimator()] }.Validate(6));
    }
}
