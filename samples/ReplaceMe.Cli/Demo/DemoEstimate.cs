using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Cli.Demo;

/// <summary>
/// The demo's run-time estimate, printed before the work starts. Two probes on the loaded model measure this machine
/// now (its load included): one sampled generation step for a batch of 16 stories, and the forward pass of 16 × 128
/// tokens. The stages are then priced from the setting:
/// <list type="bullet">
/// <item>generation: ⌈stories / 16⌉ batches × story tokens × <see cref="GenerationFill"/> steps × step time, for
/// calibration and held-out stories;</item>
/// <item>evaluation: models × held-out tokens × forward time per token × <see cref="EvaluationPasses"/>, plus the
/// 40-token sample generations;</item>
/// <item>pruning: pruned variants × calibration tokens × forward time per token × <see cref="PrunePasses"/>.</item>
/// </list>
/// <see cref="EvaluationPasses"/>, <see cref="PrunePasses"/> and <see cref="GenerationFill"/> were fitted to the stage
/// times of the demo runs listed in docs/results.md ("Run time"): scaled so that evaluation and pruning take the same
/// multiple of their estimate as generation does (their ratio to generation's was 1.0–1.9 with the first constants).
/// The forward probe includes the output head, which the pruning passes skip, hence <see cref="PrunePasses"/> &lt; 1.
/// A one-second probe cannot see how busy a shared machine will be over minutes, so the run prints a
/// <see cref="Revise">revised</see> estimate once the calibration stories are done.
/// </summary>
internal sealed record DemoEstimate(double StepSeconds, double TokenSeconds, TimeSpan Generation, TimeSpan Evaluation, TimeSpan Pruning)
{
    /// <summary>Forward-pass equivalents per held-out token and evaluated model (perplexity + cloze + overheads).</summary>
    public const double EvaluationPasses = 2.3;

    /// <summary>Forward-pass equivalents per calibration token and pruned variant (profile, capture, fit, surgery).</summary>
    public const double PrunePasses = 0.75;

    /// <summary>Share of the story-token limit that a generation batch runs on average before all its stories reach EOS.</summary>
    public const double GenerationFill = 0.65;

    private const int ProbeRows = 16, ProbeSteps = 8, ProbeLength = 128, Batch = 16, SampleTokens = 40, SamplePrompts = 2;

    public TimeSpan Total => Generation + Evaluation + Pruning;

    /// <summary>
    /// After the calibration stories are generated: the measured time of that stage against its share of
    /// <see cref="Generation"/> gives this machine's pace over minutes rather than the probes' second (on a shared
    /// machine the two differ several-fold), and the remaining stages are rescaled by it.
    /// </summary>
    public RevisedEstimate Revise(TimeSpan calibrationGeneration)
    {
        double planned = Generation.TotalSeconds * CalibrationShare;
        double pace = planned > 0 ? calibrationGeneration.TotalSeconds / planned : 1;
        double remaining = (Generation.TotalSeconds * (1 - CalibrationShare) + Evaluation.TotalSeconds + Pruning.TotalSeconds) * pace;
        return new RevisedEstimate(pace, TimeSpan.FromSeconds(remaining));
    }

    /// <summary>Share of <see cref="Generation"/> that is the calibration stories (the rest is held-out stories).</summary>
    public double CalibrationShare { get; init; } = 1;

    /// <summary>Times the two probes (about a second) and prices the setting.</summary>
    public static DemoEstimate Measure(DecoderModel model, ITextTokenizer tokenizer, DemoSettings settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(settings);
        int bos = tokenizer.BosId ?? 1;
        var generator = new TextGenerator(model);
        var prompts = Enumerable.Repeat<IReadOnlyList<int>>([bos], ProbeRows).ToList();
        var options = new GenerationOptions { MaxNewTokens = ProbeSteps, Temperature = 1, TopP = 0.95, Seed = 12345, EosTokenIds = [] };
        generator.Generate(prompts, new GenerationOptions { MaxNewTokens = 1, EosTokenIds = [] }); // warm-up
        var clock = Stopwatch.StartNew();
        generator.Generate(prompts, options);
        double step = clock.Elapsed.TotalSeconds / ProbeSteps;

        var ids = new long[ProbeRows * ProbeLength];
        for (int i = 0; i < ids.Length; i++) ids[i] = 1 + (i * 7919 % Math.Max(2, model.Config.VocabSize - 1));
        var ones = Enumerable.Repeat(1L, ids.Length).ToArray();
        using (no_grad())
        using (var input = tensor(ids, new long[] { ProbeRows, ProbeLength }))
        using (var mask = tensor(ones, new long[] { ProbeRows, ProbeLength }))
        {
            using (model.Forward(input, mask)) { } // warm-up
            clock.Restart();
            using (model.Forward(input, mask)) { }
        }
        double token = clock.Elapsed.TotalSeconds / (ProbeRows * ProbeLength);
        return Price(step, token, settings);
    }

    /// <summary>The estimate for given probe results.</summary>
    public static DemoEstimate Price(double stepSeconds, double tokenSeconds, DemoSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        static int Batches(int stories) => (stories + Batch - 1) / Batch;
        int variants = 3 * settings.MaxBlocks + 2, models = 1 + variants; // lstsq, cosine, identity per n; diag and orthonormal for the largest n
        double storyLength = settings.StoryTokens + 1;
        double generation = (Batches(settings.CalibrationStories) + Batches(settings.HeldOutStories)) * settings.StoryTokens * GenerationFill * stepSeconds;
        double evaluation = models * (settings.HeldOutStories * storyLength * tokenSeconds * EvaluationPasses + SampleTokens * stepSeconds * SamplePrompts / Batch);
        double pruning = variants * settings.CalibrationStories * storyLength * tokenSeconds * PrunePasses;
        double share = (double)Batches(settings.CalibrationStories) / (Batches(settings.CalibrationStories) + Batches(settings.HeldOutStories));
        return new DemoEstimate(stepSeconds, tokenSeconds, TimeSpan.FromSeconds(generation), TimeSpan.FromSeconds(evaluation), TimeSpan.FromSeconds(pruning))
        {
            CalibrationShare = share,
        };
    }

    /// <summary>One line for the console.</summary>
    public string Describe(int threads) => string.Create(CultureInfo.InvariantCulture,
        $"Estimated run time ≈ {Minutes(Total)} (generation {Minutes(Generation)}, evaluation {Minutes(Evaluation)}, pruning {Minutes(Pruning)}); " +
        $"probe on {threads} torch thread(s): {StepSeconds * 1e3:F0} ms per generation step of {Batch} stories, {TokenSeconds * 1e6:F0} µs per token forward.");

    internal static string Minutes(TimeSpan t) => t.TotalSeconds < 90
        ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:F0} s")
        : string.Create(CultureInfo.InvariantCulture, $"{t.TotalMinutes:F1} min");
}

/// <summary>The estimate of the stages still to come, rescaled by the pace measured on the calibration generation.</summary>
/// <param name="Pace">Measured time / estimated time of the calibration generation (1 = as estimated).</param>
/// <param name="Remaining">Estimated time of the remaining stages.</param>
internal sealed record RevisedEstimate(double Pace, TimeSpan Remaining)
{
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"Revised estimate: ≈ {DemoEstimate.Minutes(Remaining)} to go (calibration stories took {Pace:F1}× the estimate).");
}
