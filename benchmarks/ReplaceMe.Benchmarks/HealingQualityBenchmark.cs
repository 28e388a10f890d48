using System.Globalization;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Healing (<see cref="TransformHealer"/>) on the real stories15M (<see cref="Stories15MWorkload"/>): prune with least
/// squares or plain removal (angular selector, seed 5, on the first 96 calibration stories in batches of 16), then
/// train the fold block's down_proj for 200 Adam steps (--quick: 20) on the same 96 stories in batches of 2 (seed 1),
/// at peak learning rates 1e-4 (the default), 1e-3 and 3e-3, and score on the 32 held-out stories (seed 2; disjoint):
/// KL to the original and perplexity before and after. 1 torch thread. The table of docs/results.md ("Healing").
/// </summary>
internal sealed class HealingQualityBenchmark : IBenchmark
{
    private const int PruneStories = 96;

    public string Name => "healing-quality";

    public string Description => "stories15M: held-out KL and perplexity before/after 200 healing steps (--quick: 20), lstsq and identity, n = 1 and 2, lr 1e-4 / 1e-3 / 3e-3";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        using var threads = TorchThreads.Use(1);
        using var workload = new Stories15MWorkload();
        using var teacher = DecoderModel.FromPretrained(workload.ModelDir);
        int steps = settings.Quick ? 20 : 200;
        // Most informative first (the largest gap, then the default-rate question), so that a cut-short run still answers.
        (int N, string Estimator, double Rate)[] runs =
        [
            (2, "identity", 1e-4), (2, "identity", 1e-3), (2, "lstsq", 1e-3), (1, "identity", 1e-3), (1, "lstsq", 1e-3),
            (2, "identity", 3e-3), (2, "lstsq", 1e-4), (1, "lstsq", 1e-4), (1, "identity", 1e-4),
        ];
        var results = new List<Measurement>();
        using var pruneBatches = workload.CalibrationBatches(PruneStories, Stories15MWorkload.BatchSize);
        using var healBatches = workload.CalibrationBatches(PruneStories, 2);
        using var heldOut = CalibrationBatches.Batch(workload.HeldOutIds, workload.Tokenizer.PadId, 8);
        foreach (var (n, estimator, rate) in runs)
        {
            using var model = DecoderModel.FromPretrained(workload.ModelDir);
            var options = new PruningOptions
            {
                BlocksPerCut = n, Seed = 5,
                Estimator = estimator == "identity" ? new IdentityEstimator() : new LeastSquaresEstimator(),
            };
            using var pruned = new ReplaceMePruner().Prune(model, pruneBatches, options);
            var healing = TransformHealer.Heal(pruned, teacher, healBatches, heldOut, new HealingOptions { Steps = steps, LearningRate = rate, Seed = 1 });
            var h = healing.HeldOut!;
            var curve = healing.LossCurve;
            string detail = string.Create(CultureInfo.InvariantCulture,
                $"n = {n}, {estimator}, cut {pruned.Cuts[0]}, {steps} steps of 2 stories, peak lr {rate:G2}: held-out perplexity {h.Before.Perplexity:F3} -> {h.After.Perplexity:F3} (original {h.After.OriginalPerplexity:F3}), " +
                $"KL {h.Before.MeanKl:F3} -> {h.After.MeanKl:F3}; training KL mean of first/last 10 steps {curve.Take(10).Average():F3} -> {curve.TakeLast(10).Average():F3}; {healing.Elapsed.TotalSeconds:F0} s; {h.After.Predictions} held-out predictions");
            Console.Error.WriteLine(detail);
            results.Add(new Measurement(Name, $"held-out perplexity after healing (n = {n}, {estimator}, lr {rate:G2})", h.After.Perplexity, detail));
        }
        return results;
    }
}
