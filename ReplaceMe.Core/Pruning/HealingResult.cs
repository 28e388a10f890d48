using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Pruning;

/// <summary>What <see cref="TransformHealer"/> did: which down-projections it trained, the loss curve and the time.</summary>
/// <param name="Blocks">The blocks (indices in the pruned model) whose <c>mlp.down_proj</c> was trained.</param>
/// <param name="Options">The settings used.</param>
/// <param name="LossCurve">Mean per-token KL(original ‖ pruned) of the batch of each step, measured before that step's update.</param>
/// <param name="LearningRates">The learning rate of each step.</param>
/// <param name="Tokens">Valid tokens seen over all steps.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record HealingResult(
    IReadOnlyList<int> Blocks, HealingOptions Options, IReadOnlyList<double> LossCurve, IReadOnlyList<double> LearningRates, long Tokens, TimeSpan Elapsed)
{
    /// <summary>The blocks (indices in the pruned model) whose <c>mlp.down_proj</c> was trained.</summary>
    public IReadOnlyList<int> Blocks { get; } = Blocks;

    /// <summary>The settings used.</summary>
    public HealingOptions Options { get; } = Options;

    /// <summary>Mean per-token KL(original ‖ pruned) of the batch of each step, measured before that step's update.</summary>
    public IReadOnlyList<double> LossCurve { get; } = LossCurve;

    /// <summary>The learning rate of each step.</summary>
    public IReadOnlyList<double> LearningRates { get; } = LearningRates;

    /// <summary>Valid tokens seen over all steps.</summary>
    public long Tokens { get; } = Tokens;

    /// <summary>Wall time.</summary>
    public TimeSpan Elapsed { get; } = Elapsed;

    /// <summary>The held-out split and the scores on it before and after healing; null when healing ran without held-out batches.</summary>
    public HealingHeldOut? HeldOut { get; init; }

    /// <summary>The record as indented JSON (settings, trained blocks, loss curve, held-out scores), e.g. to save beside the pruned model.</summary>
    public string ToJson() => ToJsonObject().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>The record as a JSON object (also the <c>healing</c> entry of <c>replaceme.json</c>).</summary>
    internal JsonObject ToJsonObject()
    {
        var doc = new JsonObject
        {
            ["trained"] = new JsonArray([.. Blocks.Select(b => (JsonNode)JsonValue.Create($"model.layers.{b}.mlp.down_proj"))]),
            ["loss"] = "mean per-token KL(original || pruned) of next-token distributions",
            ["steps"] = Options.Steps,
            ["learning_rate"] = Options.LearningRate,
            ["warmup_fraction"] = Options.WarmupFraction,
            ["schedule"] = "linear warm-up, cosine decay to 0",
            ["seed"] = Options.Seed,
            ["tokens"] = Tokens,
            ["seconds"] = Math.Round(Elapsed.TotalSeconds, 1),
            ["loss_curve"] = new JsonArray([.. LossCurve.Select(v => (JsonNode)JsonValue.Create(v))]),
        };
        if (HeldOut is { } h)
        {
            doc["held_out"] = new JsonObject
            {
                ["split"] = "held-out batches are kept out of pruning and healing (none of them is a training batch)",
                ["training_batches"] = h.TrainingBatches,
                ["training_sequences"] = h.TrainingSequences,
                ["batches"] = h.Batches,
                ["sequences"] = h.Sequences,
                ["tokens"] = h.Before.Tokens,
                ["predictions"] = h.Before.Predictions,
                ["sha256_token_ids"] = h.Fingerprint,
                ["kl_before"] = Finite(h.Before.MeanKl),
                ["kl_after"] = Finite(h.After.MeanKl),
                ["perplexity_before"] = Finite(h.Before.Perplexity),
                ["perplexity_after"] = Finite(h.After.Perplexity),
                ["original_perplexity"] = Finite(h.After.OriginalPerplexity),
            };
        }
        return doc;
    }

    private static JsonValue? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
}

/// <summary>The held-out split of a healing run and the pruned model's scores on it before and after healing.</summary>
/// <param name="Before">Scores of the pruned model before healing.</param>
/// <param name="After">Scores after healing.</param>
/// <param name="Batches">Held-out batches.</param>
/// <param name="Sequences">Held-out sequences.</param>
/// <param name="Fingerprint">SHA-256 of the held-out token ids (<see cref="Calibration.CalibrationBatches.Fingerprint"/>).</param>
/// <param name="TrainingBatches">Batches healing trained on.</param>
/// <param name="TrainingSequences">Sequences healing trained on.</param>
public sealed record HealingHeldOut(
    HealingEvaluation Before, HealingEvaluation After, int Batches, int Sequences, string Fingerprint, int TrainingBatches, int TrainingSequences)
{
    /// <summary>Scores of the pruned model before healing.</summary>
    public HealingEvaluation Before { get; } = Before;

    /// <summary>Scores after healing.</summary>
    public HealingEvaluation After { get; } = After;

    /// <summary>Held-out batches.</summary>
    public int Batches { get; } = Batches;

    /// <summary>Held-out sequences.</summary>
    public int Sequences { get; } = Sequences;

    /// <summary>SHA-256 of the held-out token ids (<see cref="Calibration.CalibrationBatches.Fingerprint"/>).</summary>
    public string Fingerprint { get; } = Fingerprint;

    /// <summary>Batches healing trained on.</summary>
    public int TrainingBatches { get; } = TrainingBatches;

    /// <summary>Sequences healing trained on.</summary>
    public int TrainingSequences { get; } = TrainingSequences;
}
