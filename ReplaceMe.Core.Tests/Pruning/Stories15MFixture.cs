using System.Diagnostics;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>
/// stories15M imported once into a temporary HF folder, plus self-generated calibration stories (seeded) and a
/// separate set of held-out stories generated with another seed.
/// </summary>
public sealed class Stories15MFixture : IDisposable
{
    public const int CalibrationStories = 128;
    public const int HeldOutStories = 32;
    public const int StoryTokens = 64;

    private readonly TempDir _dir = TestPaths.NewTempDir();

    public Stories15MFixture()
    {
        TorchRuntime.EnsureLoaded();
        var clock = Stopwatch.StartNew();
        ModelDir = _dir.Combine("stories15M-hf");
        Llama2cImporter.Import(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"),
            Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"), ModelDir);
        Tokenizer = TokenizerLoader.Load(ModelDir);
        using var model = DecoderModel.FromPretrained(ModelDir);
        var generation = new SelfGeneratedOptions { MaxNewTokens = StoryTokens, Seed = 1, BatchSize = 64 };
        CalibrationIds = SelfGeneratedText.GenerateTokens(model, Tokenizer, CalibrationStories, generation);
        HeldOutIds = SelfGeneratedText.GenerateTokens(model, Tokenizer, HeldOutStories, generation with { Seed = 2 });
        OriginalPerplexity = Perplexity(model, HeldOutIds);
        SetupSeconds = clock.Elapsed.TotalSeconds;
    }

    public string ModelDir { get; }
    public ITextTokenizer Tokenizer { get; }
    public IReadOnlyList<IReadOnlyList<int>> CalibrationIds { get; }
    public IReadOnlyList<IReadOnlyList<int>> HeldOutIds { get; }
    public double OriginalPerplexity { get; }
    public double SetupSeconds { get; }

    public List<TokenBatch> CalibrationBatches() => [.. ReplaceMe.Core.Calibration.CalibrationBatches.Batch(CalibrationIds, Tokenizer.PadId, 16)];

    /// <summary>exp of the token-weighted mean next-token NLL over valid positions, written here independently of the library's evaluator.</summary>
    public static double Perplexity(DecoderModel model, IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        double nll = 0;
        long count = 0;
        foreach (var batch in ReplaceMe.Core.Calibration.CalibrationBatches.Batch(sequences, 0, 16))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var logits = model.Forward(batch.InputIds, batch.AttentionMask);                       // [B, T, V] float32
                var logp = logits[.., ..^1, ..].log_softmax(-1);                                         // predicts t+1
                var targets = batch.InputIds[.., 1..];                                                   // [B, T-1]
                var valid = batch.AttentionMask[.., 1..].mul(batch.AttentionMask[.., ..^1]).to(ScalarType.Float64);
                var picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(ScalarType.Float64);    // [B, T-1]                          // [B, T-1]
                nll -= picked.mul(valid).sum().item<double>();
                count += (long)valid.sum().item<double>();
            }
        }
        return Math.Exp(nll / count);
    }

    /// <summary>Held-out perplexity per (n, estimator, selector), so that tests share runs.</summary>
    internal Dictionary<(int, string, string), (double, PruningResultSummary)> Runs { get; } = [];

    public void Dispose() => _dir.Dispose();
}
