using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Calibration;

/// <summary>How <see cref="SelfGeneratedText"/> samples documents from the model.</summary>
public sealed record SelfGeneratedOptions
{
    /// <summary>Tokens generated per document after the prompt (default 128).</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Sampling temperature (default 1: the model's own distribution; 0 would make every document the same).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Nucleus sampling threshold (default 0.95).</summary>
    public double TopP { get; init; } = 0.95;

    /// <summary>Seed; the same seed, model and options give the same documents.</summary>
    public int Seed { get; init; }

    /// <summary>Text every document starts from; empty (the default) starts from BOS only.</summary>
    public string Prompt { get; init; } = "";

    /// <summary>Documents generated together in one batch (default 32).</summary>
    public int BatchSize { get; init; } = 32;
}

/// <summary>
/// Calibration text sampled from the model itself (the paper's "orca_generated"-style data, Table 4): with no
/// external corpus at hand, the model's own continuations of BOS (or of a short prompt) cover the distribution it
/// was trained on. This is how the stories15M demo calibrates.
/// </summary>
public static class SelfGeneratedText
{
    /// <summary>Generates <paramref name="count"/> documents and returns their token ids (prompt, BOS included, then the
    /// continuation, ending at EOS when one was produced) — ready for <see cref="CalibrationBatches.Batch"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> or an option is out of range.</exception>
    /// <exception cref="ArgumentException">The prompt is empty and the tokenizer has no BOS token.</exception>
    public static IReadOnlyList<IReadOnlyList<int>> GenerateTokens(
        DecoderModel model, ITextTokenizer tokenizer, int count, SelfGeneratedOptions? options = null,
        IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        options ??= new SelfGeneratedOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxNewTokens);
        TorchRuntime.EnsureLoaded();
        IReadOnlyList<int> prompt = options.Prompt.Length == 0
            ? [tokenizer.BosId ?? throw new ArgumentException("Self-generated calibration with an empty prompt starts from BOS, but the tokenizer has no BOS token; give a prompt.", nameof(tokenizer))]
            : tokenizer.Encode(options.Prompt, addSpecialTokens: true);
        var generator = new TextGenerator(model);
        var eos = model.Config.EosTokenIds.Concat(tokenizer.EosId is int e ? [e] : []).Distinct().ToList();
        var documents = new List<IReadOnlyList<int>>(count);
        for (int batch = 0; documents.Count < count; batch++)
        {
            int rows = Math.Min(options.BatchSize, count - documents.Count);
            var generation = new GenerationOptions
            {
                MaxNewTokens = options.MaxNewTokens,
                Temperature = options.Temperature,
                TopP = options.TopP,
                // Every batch needs its own stream of samples; derive it deterministically from the seed.
                Seed = unchecked(options.Seed * 1_000_003 + batch),
                EosTokenIds = eos,
                PadTokenId = tokenizer.PadId,
            };
            var continuations = generator.Generate(Enumerable.Repeat(prompt, rows).ToList(), generation, cancellationToken: cancellationToken);
            foreach (var c in continuations) documents.Add([.. prompt, .. c]);
            progress?.Report(new PruningProgress("calibration", (double)documents.Count / count, Tokens: documents.Sum(d => (long)d.Count),
                Message: $"generated {documents.Count}/{count} documents"));
        }
        return documents;
    }

    /// <summary>Generates <paramref name="count"/> documents and returns them as text (special tokens dropped).</summary>
    /// <inheritdoc cref="GenerateTokens" path="/exception"/>
    public static IReadOnlyList<string> Generate(
        DecoderModel model, ITextTokenizer tokenizer, int count, SelfGeneratedOptions? options = null,
        IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default) =>
        GenerateTokens(model, tokenizer, count, options, progress, cancellationToken)
            .Select(ids => tokenizer.Decode(ids, skipSpecialTokens: true)).ToList();
}
