using System.CommandLine;
using System.Globalization;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>prune --heal-steps N</c>: after pruning, fine-tune the fold blocks' down_proj against the original model
/// (<see cref="TransformHealer"/>). The last <c>--heal-held-out</c> of the calibration batches are then kept out of both
/// pruning and healing, and the original, pruned and healed models are scored on them.
/// </summary>
internal sealed class HealArgs
{
    public Option<int> Steps { get; } = new("--heal-steps") { Description = "After pruning, train only the fold block(s)' down_proj for N Adam steps on KL to the original model (0 = no healing)", DefaultValueFactory = _ => 0 };
    public Option<double> LearningRate { get; } = new("--heal-lr") { Description = "Peak learning rate of healing (linear warm-up over 10 % of the steps, cosine decay to 0)", DefaultValueFactory = _ => new HealingOptions().LearningRate };
    public Option<double> HeldOut { get; } = new("--heal-held-out") { Description = "With --heal-steps: fraction of calibration batches (the last ones) kept out of pruning and healing and used to score them", DefaultValueFactory = _ => 0.2 };

    public HealArgs()
    {
        CliOptions.Require(Steps, n => n >= 0, "--heal-steps must be ≥ 0.");
        CliOptions.Require(LearningRate, r => r > 0 && double.IsFinite(r), "--heal-lr must be a finite number > 0.");
        CliOptions.Require(HeldOut, f => f >= 0 && f < 1, "--heal-held-out must be in [0, 1).");
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Steps);
        command.Options.Add(LearningRate);
        command.Options.Add(HeldOut);
        command.Validators.Add(result =>
        {
            if (result.GetValue(Steps) == 0 && (result.GetResult(LearningRate) is { Implicit: false } || result.GetResult(HeldOut) is { Implicit: false }))
                result.AddError("--heal-lr and --heal-held-out are only used with --heal-steps N (N ≥ 1).");
        });
    }

    public bool Enabled(ParseResult parse) => parse.GetValue(Steps) > 0;

    /// <summary>The batches pruning and healing fit on, and the held-out ones (empty without healing).</summary>
    public (IReadOnlyList<TokenBatch> Fit, IReadOnlyList<TokenBatch> HeldOut) Split(ParseResult parse, IReadOnlyList<TokenBatch> batches)
    {
        if (!Enabled(parse)) return (batches, []);
        double fraction = parse.GetValue(HeldOut);
        if (fraction > 0 && batches.Count < 2)
            throw new ArgumentException($"--heal-held-out {fraction.ToString(CultureInfo.InvariantCulture)} needs at least 2 calibration batches; got {batches.Count} (lower --batch-size or give more documents, or --heal-held-out 0).");
        return CalibrationBatches.Split(batches, fraction);
    }

    /// <summary>Heals the pruned model against a fresh copy of the original; prints the loss curve and the held-out scores.</summary>
    public HealingResult Run(ParseResult parse, TextWriter o, PruningResult pruned, string modelDir,
        IReadOnlyList<TokenBatch> fit, IReadOnlyList<TokenBatch> heldOut, int seed, CancellationToken ct)
    {
        var (teacher, _) = CliModels.Load(modelDir);
        using (teacher)
        {
            var options = new HealingOptions { Steps = parse.GetValue(Steps), LearningRate = parse.GetValue(LearningRate), Seed = seed };
            // With held-out batches the scores before and after healing are part of the result (and of replaceme.json).
            var result = heldOut.Count > 0
                ? TransformHealer.Heal(pruned, teacher, fit, heldOut, options, cancellationToken: ct)
                : TransformHealer.Heal(pruned, teacher, fit, options, cancellationToken: ct);
            var curve = result.LossCurve;
            int every = Math.Max(1, curve.Count / 10);
            var shown = Enumerable.Range(0, curve.Count).Where(i => i % every == 0 || i == curve.Count - 1)
                .Select(i => $"{i + 1}:{curve[i].ToString("G4", CultureInfo.InvariantCulture)}");
            o.WriteLine($"healed down_proj of block(s) {string.Join(", ", result.Blocks)} (pruned indices): {options.Steps} steps, peak lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}, {result.Tokens} tokens, {result.Elapsed.TotalSeconds:F1} s");
            o.WriteLine($"  training KL by step: {string.Join(" ", shown)}");
            if (result.HeldOut is { } h)
                o.WriteLine($"held-out ({h.Batches} batches, {h.After.Predictions} predictions): perplexity original {F(h.After.OriginalPerplexity)}, pruned {F(h.Before.Perplexity)}, healed {F(h.After.Perplexity)}; KL to original {F(h.Before.MeanKl)} -> {F(h.After.MeanKl)}");
            return result;
        }
    }

    private static string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
}
