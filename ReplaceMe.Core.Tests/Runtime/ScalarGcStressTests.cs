using System.Globalization;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tests.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// Runs generation, calibration, the distance profile, the three estimators and perplexity while another thread
/// forces full collections and runs finalizers without pause. A Scalar that TorchSharp or Core leaves unreferenced
/// during a native call is then finalized, and its native memory freed, while LibTorch reads it: a <c>Scalar.h</c>
/// internal assert, or a silently different number. Each pass must therefore succeed and reproduce, bit for bit,
/// the numbers of a pass made without the collector thread.
/// </summary>
public class ScalarGcStressTests
{
    /// <summary>Stressed passes in the normal suite (each a few seconds).</summary>
    private static readonly int Passes = int.TryParse(Environment.GetEnvironmentVariable("REPLACEME_GC_STRESS_PASSES"), out var p) && p > 0 ? p : 3;

    public ScalarGcStressTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Pipeline_is_unchanged_while_the_collector_runs_continuously()
    {
        var config = TinyModels.Llama(layers: 6) with
        {
            HiddenSize = 64, IntermediateSize = 160, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 128,
        };
        var weights = TinyModels.RandomWeights(config, seed: 5);
        var reference = Pass(config, weights);

        using var stop = new CancellationTokenSource();
        long collections = 0;
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                collections++;
            }
        }) { IsBackground = true, Name = "gc-stress" };
        collector.Start();
        try
        {
            for (int i = 0; i < Passes; i++)
                Assert.Equal(reference, Pass(config, weights));
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.True(collections > 10, $"The collector thread ran only {collections} collections.");
    }

    /// <summary>One run of every path; returns the numbers it produced, rendered exactly ("R").</summary>
    private static List<string> Pass(ModelConfig config, Dictionary<string, double[]> weights)
    {
        var tokenizer = new Calibration.CharTokenizer();
        var results = new List<string>();
        using var model = TinyModels.Build(config, weights, ScalarType.Float32);
        var stories = SelfGeneratedText.Generate(model, tokenizer, 24, new SelfGeneratedOptions { MaxNewTokens = 40, Seed = 3, BatchSize = 8 });
        results.AddRange(stories);
        var evaluation = new ModelEvaluator(model, tokenizer).Perplexity("stress", stories.Take(6).ToList());
        results.Add(evaluation.Perplexity.ToString("R", CultureInfo.InvariantCulture));

        ITransformEstimator[] estimators =
        [
            new LeastSquaresEstimator(), new CosineEstimator(new CosineOptions(LearningRate: 1e-3, BatchSize: 128, Epochs: 2) { Optimizer = CosineOptimizer.Adam }),
            new CosineEstimator(new CosineOptions(BatchSize: 128) { Steps = 6 }), new IdentityEstimator(),
        ];
        foreach (var estimator in estimators)
        {
            using var copy = TinyModels.Build(config, weights, ScalarType.Float32);
            var options = new PruningOptions
            {
                BlocksPerCut = 2, Estimator = estimator, MaxLength = 48, BatchSize = 8, Seed = 2,
            };
            using var result = new ReplaceMePruner().Prune(copy, stories, tokenizer, options);
            results.Add($"{estimator.Name} {result.Cuts[0]} {result.Outcomes[0].Report.RelativeResidual?.ToString("R", CultureInfo.InvariantCulture)}");
            var pruned = new ModelEvaluator(copy, tokenizer).Perplexity("stress", stories.Take(6).ToList());
            results.Add(pruned.Perplexity.ToString("R", CultureInfo.InvariantCulture));
        }
        return results;
    }
}
