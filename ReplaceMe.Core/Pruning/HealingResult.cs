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

    /// <summary>The record as indented JSON (settings, trained blocks, loss curve), e.g. to save beside the pruned model.</summary>
    public string ToJson()
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
        return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
