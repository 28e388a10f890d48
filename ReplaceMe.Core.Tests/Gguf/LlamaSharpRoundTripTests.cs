using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tests.Pruning;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary>
/// The exported GGUF read back by a real llama.cpp client (LLamaSharp 0.30.0, CPU backend, 1 thread) and compared with
/// the library's own forward and greedy generation: stories15M as imported and pruned by 1 and 2 blocks (least squares).
/// </summary>
public class LlamaSharpRoundTripTests(ITestOutputHelper output)
{
    private const string Prompt = "Once upon a time";
    private const string FixedText = "Once upon a time, there was a little dog named Max. Max liked to run in the park with his friend, a small cat.";
    private const int GreedyTokens = 40;

    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    /// <summary>Max |Δ log p| allowed per stored type (measured values are printed by the test; see docs/checkpoints.md).</summary>
    public static TheoryData<string, GgufDType, double, int> Cases => new()
    {
        { "original", GgufDType.F32, 1e-4, GreedyTokens },
        { "original", GgufDType.F16, 1e-2, 32 },
        { "original", GgufDType.Q8_0, 0.5, 8 },
        { "pruned-1", GgufDType.F32, 1e-4, GreedyTokens },
        { "pruned-2", GgufDType.F32, 1e-4, GreedyTokens },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void LLamaSharp_reproduces_the_library(string variant, GgufDType dtype, double maxLogProbDiff, int minEqualGreedy)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine($"{variant}-{dtype}.gguf");
        DecoderModel? owned = null;
        try
        {
            DecoderModel model;
            if (variant == "original")
            {
                model = Fixture.Model;
                model.SaveGguf(path, new GgufExportOptions { DType = dtype });
            }
            else
            {
                owned = model = DecoderModel.FromPretrained(Fixture.ModelDir);
                // 32 of the shared self-generated stories (≈ 2k tokens) keep the fit cheap; the export is what is tested here.
                var batches = ReplaceMe.Core.Calibration.CalibrationBatches.Batch(Fixture.CalibrationIds.Take(32).ToList(), Fixture.Tokenizer.PadId, 16).ToList();
                try
                {
                    var options = new PruningOptions { BlocksPerCut = variant == "pruned-1" ? 1 : 2, Seed = 5, Estimator = new LeastSquaresEstimator() };
                    using var result = new ReplaceMePruner().Prune(model, batches, options);
                    result.SaveGguf(path, new GgufExportOptions { DType = dtype });
                    var g = new GgufTestReader(path);
                    Assert.Equal(string.Join(", ", result.Cuts), g.Get<string>("replaceme.removed_blocks"));
                    Assert.Equal("6", g.Get<string>("replaceme.original_block_count"));
                    Assert.Equal((uint)(6 - options.BlocksPerCut!.Value), g.Get<uint>("llama.block_count"));
                    output.WriteLine($"{variant}: removed {g.Get<string>("replaceme.removed_blocks")}");
                }
                finally { PipelineFixtures.DisposeAll(batches); }
            }

            using var runner = new LlamaSharpRunner(path);
            var tokenizer = Fixture.Tokenizer;
            Assert.Equal(model.Config.VocabSize, runner.VocabCount);

            // Tokenization: llama.cpp's, from the GGUF's tokenizer keys, equals the library's.
            var promptIds = tokenizer.Encode(Prompt);
            var textIds = tokenizer.Encode(FixedText);
            Assert.Equal(promptIds, runner.Tokenize(Prompt));
            Assert.Equal(textIds, runner.Tokenize(FixedText));

            // Per-token log-probabilities of a fixed text.
            double[] ours = LibraryLogProbs(model, textIds);
            double[] theirs = runner.NextTokenLogProbs(textIds);
            double maxDiff = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
            double meanDiff = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Average();
            output.WriteLine($"{variant} {dtype}: max |Δ log p| over {ours.Length} tokens = {maxDiff:E2} (mean {meanDiff:E2})");
            Assert.True(maxDiff <= maxLogProbDiff, $"max |Δ log p| {maxDiff:E3} > {maxLogProbDiff:E1}");

            // Greedy continuation.
            var eos = tokenizer.EosId;
            var expected = new TextGenerator(model).Generate([promptIds], new GenerationOptions { MaxNewTokens = GreedyTokens, EosTokenIds = eos is int e ? [e] : [] })[0];
            var actual = runner.Greedy(promptIds, GreedyTokens, eos);
            int equal = expected.Zip(actual).TakeWhile(p => p.First == p.Second).Count();
            output.WriteLine($"{variant} {dtype}: greedy tokens equal for {equal} of {expected.Length}; llama.cpp: {tokenizer.Decode(actual)}");
            Assert.True(equal >= Math.Min(minEqualGreedy, expected.Length), $"only the first {equal} greedy tokens agree; library: {tokenizer.Decode(expected)} | llama.cpp: {tokenizer.Decode(actual)}");
            if (minEqualGreedy == GreedyTokens) Assert.Equal(expected, actual);
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>log p(x_{t+1} | x_≤t) from the library's forward, in float64.</summary>
    private static double[] LibraryLogProbs(DecoderModel model, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray(), ScalarType.Int64).unsqueeze(0);
        var mask = ones_like(input);
        var logp = model.Forward(input, mask).to(ScalarType.Float64).log_softmax(-1)[0];
        var result = new double[ids.Count - 1];
        for (int t = 0; t + 1 < ids.Count; t++) result[t] = logp[t, ids[t + 1]].item<double>();
        return result;
    }
}
