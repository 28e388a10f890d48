namespace ReplaceMe.Core.Pruning;

/// <summary>
/// Settings of <see cref="TransformHealer"/>: Adam on the down-projection(s) of the fold block(s) only, minimising the
/// mean per-token KL(original ‖ pruned) of the next-token distributions on the calibration batches. Each step uses one
/// calibration batch (batches are visited in a seeded random order, reshuffled every pass). The learning rate rises
/// linearly over the first <see cref="WarmupFraction"/> of the steps and then follows a cosine from
/// <see cref="LearningRate"/> down to 0 at the last step.
/// </summary>
public sealed record HealingOptions
{
    /// <summary>Optimizer steps (one calibration batch each).</summary>
    public int Steps { get; init; } = 200;

    /// <summary>Peak Adam learning rate (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight decay). Default 1e-3: on stories15M,
    /// 200 steps at 1e-3 healed every measured case much further than at 1e-4 (docs/results.md, "Healing").</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Fraction of <see cref="Steps"/> with a linear warm-up from 0; in [0, 1).</summary>
    public double WarmupFraction { get; init; } = 0.1;

    /// <summary>Seed of the batch order.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Memory for logits: a batch is processed in row chunks so that one chunk's logits-sized tensors (teacher and
    /// student log-probabilities, the probabilities, the difference and the gradient, about six of
    /// <c>rows · T · vocab</c> values) stay within this many bytes; gradients are accumulated over the chunks of a batch,
    /// so the result does not depend on it (up to float rounding). A single row is always allowed.
    /// </summary>
    public long LogitsBudgetBytes { get; init; } = 512L << 20;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range (named).</exception>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"HealingOptions.Steps must be ≥ 1; got {Steps}.");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"HealingOptions.LearningRate must be a finite number > 0; got {LearningRate}.");
        if (!(WarmupFraction >= 0 && WarmupFraction < 1)) throw new ArgumentException($"HealingOptions.WarmupFraction must be in [0, 1); got {WarmupFraction}.");
        if (LogitsBudgetBytes < 1) throw new ArgumentException($"HealingOptions.LogitsBudgetBytes must be ≥ 1; got {LogitsBudgetBytes}.");
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based): linear warm-up, then cosine decay to 0.</summary>
    public double LearningRateAt(int step)
    {
        int warmup = (int)Math.Ceiling(WarmupFraction * Steps);
        if (step < warmup) return LearningRate * (step + 1) / warmup;
        int decay = Steps - warmup;
        double progress = decay <= 1 ? 0 : (double)(step - warmup) / (decay - 1);
        return LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
