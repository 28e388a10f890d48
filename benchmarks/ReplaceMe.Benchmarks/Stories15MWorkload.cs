using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// The real stories15M (obtained like the tests do: <see cref="Stories15M.Obtain(string?, string?, CancellationToken)"/>,
/// imported into a temporary folder) with the tests' calibration and held-out stories: 128 self-generated stories
/// (seed 1, ≤ 64 new tokens) in batches of 16, and 32 held-out stories (seed 2). Perplexity is the token-weighted
/// exp of the mean next-token NLL over valid positions (the tests' formula).
/// </summary>
internal sealed class Stories15MWorkload : IDisposable
{
    public const int CalibrationStories = 128, HeldOutStories = 32, StoryTokens = 64, BatchSize = 16;

    private readonly string _root;

    public Stories15MWorkload()
    {
        _root = Path.Combine(Path.GetTempPath(), "replaceme-bench-" + Guid.NewGuid().ToString("N"));
        ModelDir = Path.Combine(_root, "stories15M");
        Stories15M.Obtain().ImportTo(ModelDir);
        Tokenizer = TokenizerLoader.Load(ModelDir);
        using var model = DecoderModel.FromPretrained(ModelDir);
        var generation = new SelfGeneratedOptions { MaxNewTokens = StoryTokens, Seed = 1, BatchSize = 64 };
        CalibrationIds = SelfGeneratedText.GenerateTokens(model, Tokenizer, CalibrationStories, generation);
        HeldOutIds = SelfGeneratedText.GenerateTokens(model, Tokenizer, HeldOutStories, generation with { Seed = 2 });
        OriginalPerplexity = Perplexity(model, HeldOutIds);
    }

    public string ModelDir { get; }

    public ITextTokenizer Tokenizer { get; }

    public IReadOnlyList<IReadOnlyList<int>> CalibrationIds { get; }

    public IReadOnlyList<IReadOnlyList<int>> HeldOutIds { get; }

    public double OriginalPerplexity { get; }

    /// <summary>Calibration batches (the caller disposes the list).</summary>
    public TokenBatchList CalibrationBatches(int count = CalibrationStories, int batchSize = BatchSize) =>
        ReplaceMe.Core.Calibration.CalibrationBatches.Batch(CalibrationIds.Take(count).ToList(), Tokenizer.PadId, batchSize);

    public static double Perplexity(DecoderModel model, IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        double nll = 0;
        long count = 0;
        using var batches = ReplaceMe.Core.Calibration.CalibrationBatches.Batch(sequences, 0, 16);
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(batch.InputIds, batch.AttentionMask);                       // [B, T, V]
            var logp = logits[.., ..^1, ..].log_softmax(-1);                                         // predicts t+1
            var targets = batch.InputIds[.., 1..];                                                   // [B, T-1]
            var valid = batch.AttentionMask[.., 1..].mul(batch.AttentionMask[.., ..^1]).to(ScalarType.Float64);
            var picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(ScalarType.Float64);  // [B, T-1]
            nll -= picked.mul(valid).sum().item<double>();
            count += (long)valid.sum().item<double>();
        }
        return Math.Exp(nll / count);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
