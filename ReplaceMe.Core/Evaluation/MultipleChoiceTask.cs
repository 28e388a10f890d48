namespace ReplaceMe.Core.Evaluation;

/// <summary>Which accuracy a task reports as its headline number in a <see cref="RetentionReport"/>.</summary>
public enum ChoiceMetric
{
    /// <summary><c>acc</c>: argmax of the summed log-likelihoods.</summary>
    Accuracy,
    /// <summary><c>acc_norm</c>: argmax of the log-likelihoods divided by the choices' character lengths.</summary>
    NormalizedAccuracy,
}

/// <summary>A multiple-choice task: evaluated items, an optional separate split to draw few-shot examples from, and what loading skipped.</summary>
/// <param name="Name">Task name used in reports.</param>
/// <param name="Items">The evaluated items.</param>
/// <param name="FewShotItems">Examples for k-shot prompts; null draws them from <paramref name="Items"/> (never the item itself).</param>
/// <param name="PrimaryMetric">The metric a retention report shows.</param>
/// <param name="SkippedItems">Records the loader skipped (unlabelled test records), counted in results.</param>
public sealed record MultipleChoiceTask(
    string Name,
    IReadOnlyList<MultipleChoiceItem> Items,
    IReadOnlyList<MultipleChoiceItem>? FewShotItems = null,
    ChoiceMetric PrimaryMetric = ChoiceMetric.Accuracy,
    int SkippedItems = 0);
