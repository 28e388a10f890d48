namespace ReplaceMe.Core.Pruning;

/// <summary>How close a pruned model is to the original on some batches (<see cref="TransformHealer.Evaluate"/>).</summary>
/// <param name="MeanKl">Mean over valid tokens of KL(original ‖ pruned) of the next-token distributions (nats).</param>
/// <param name="Perplexity">The pruned model's perplexity: exp of the mean next-token NLL over valid (token, next token) pairs.</param>
/// <param name="OriginalPerplexity">The original model's perplexity on the same pairs.</param>
/// <param name="Tokens">Valid tokens entering <paramref name="MeanKl"/>.</param>
/// <param name="Predictions">(token, next token) pairs entering the perplexities.</param>
public sealed record HealingEvaluation(double MeanKl, double Perplexity, double OriginalPerplexity, long Tokens, long Predictions)
{
    /// <summary>Mean over valid tokens of KL(original ‖ pruned) of the next-token distributions (nats).</summary>
    public double MeanKl { get; } = MeanKl;

    /// <summary>The pruned model's perplexity: exp of the mean next-token NLL over valid (token, next token) pairs.</summary>
    public double Perplexity { get; } = Perplexity;

    /// <summary>The original model's perplexity on the same pairs.</summary>
    public double OriginalPerplexity { get; } = OriginalPerplexity;

    /// <summary>Valid tokens entering <see cref="MeanKl"/>.</summary>
    public long Tokens { get; } = Tokens;

    /// <summary>(token, next token) pairs entering the perplexities.</summary>
    public long Predictions { get; } = Predictions;
}
