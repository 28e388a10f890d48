using System.Globalization;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Quality and fit time of the cosine estimator from the identity against least squares on the real stories15M
/// (<see cref="Stories15MWorkload"/>: 128 calibration stories, 32 held-out ones), angular selector, seed 5, n = 1 and 2
/// (--quick: n = 2 only), on 1 torch thread. Reports held-out perplexity, cos(Y + X·T, target) on the fit's diagnostic
/// sample, the estimator's own clock and the loss curve. The table of docs/results.md ("Cosine from the identity").
/// </summary>
internal sealed class CosineQualityBenchmark : IBenchmark
{
    public string Name => "cosine-quality";

    public string Description => "stories15M: held-out perplexity, cos and fit time of cosine from the identity (L-BFGS; Eq. 8 scaled and unscaled, Eq. 7) vs least squares, n = 1 and 2 (--quick: n = 2)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        using var threads = TorchThreads.Use(1);
        using var workload = new Stories15MWorkload();
        var results = new List<Measurement>
        {
            new(Name, "original held-out perplexity", workload.OriginalPerplexity, "32 held-out stories (seed 2)"),
        };
        var estimators = new (string Label, Func<ITransformEstimator> Make)[]
        {
            ("least squares", () => new LeastSquaresEstimator()),
            ("cosine, default (L-BFGS, Eq. 8, from the identity, least-squares scale)", () => new CosineEstimator()),
            ("cosine, L-BFGS, Eq. 8, from the identity, unscaled", () => new CosineEstimator(new CosineOptions { LeastSquaresScale = false })),
            ("cosine, L-BFGS, Eq. 7, from the identity, unscaled", () => new CosineEstimator(new CosineOptions(Loss: CosineLoss.Exact) { LeastSquaresScale = false })),
        };
        foreach (int n in settings.Quick ? new[] { 2 } : [1, 2])
        {
            double? leastSquares = null;
            foreach (var (label, make) in estimators)
            {
                using var model = DecoderModel.FromPretrained(workload.ModelDir);
                using var batches = workload.CalibrationBatches();
                var options = new PruningOptions { BlocksPerCut = n, Seed = 5, Estimator = make() };
                using var result = new ReplaceMePruner().Prune(model, batches, options);
                double ppl = Stories15MWorkload.Perplexity(model, workload.HeldOutIds);
                leastSquares ??= ppl;
                var report = result.Outcomes[0].Report;
                string curve = report.LossCurve is { } c ? string.Join(" ", c.Select(v => v.ToString("F4", CultureInfo.InvariantCulture))) : "–";
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"n = {n}, cut {result.Cuts[0]}, {report.Tokens} tokens; vs least squares {100 * (ppl / leastSquares.Value - 1):+0.0;-0.0} %; cos(Y + X·T, target) {report.CosineAfter:F4} (before {report.CosineBefore:F4}); relative residual {report.RelativeResidual:F4}; fit clock {report.Elapsed.TotalSeconds:F1} s; loss curve {curve}; {string.Join("; ", report.Notes ?? [])}");
                results.Add(new Measurement(Name, $"held-out perplexity ({label}, n = {n})", ppl, detail));
                Console.Error.WriteLine(detail + $" => {label}: ppl {ppl:F3}");
            }
        }
        return results;
    }
}
