namespace ReplaceMe.Core.Evaluation;

/// <summary>How the model scored one item.</summary>
/// <param name="LogLikelihoods">Summed continuation log-probability of each choice.</param>
/// <param name="Predicted">argmax of <paramref name="LogLikelihoods"/> (first on ties).</param>
/// <param name="PredictedNormalized">argmax of log-likelihood / character length.</param>
/// <param name="Label">The correct choice.</param>
public sealed record ChoiceOutcome(IReadOnlyList<double> LogLikelihoods, int Predicted, int PredictedNormalized, int Label);

/// <summary>Accuracy of a model on a multiple-choice task, lm-evaluation-harness style.</summary>
/// <param name="Task">Task name.</param>
/// <param name="Shots">Few-shot examples per prompt.</param>
/// <param name="Accuracy"><c>acc</c>: fraction of items whose highest log-likelihood is the label.</param>
/// <param name="AccuracyStdErr">Standard error of <paramref name="Accuracy"/>: sample standard deviation / √n (0 when n &lt; 2).</param>
/// <param name="NormalizedAccuracy"><c>acc_norm</c>: the same after dividing by each choice's length in characters.</param>
/// <param name="NormalizedAccuracyStdErr">Standard error of <paramref name="NormalizedAccuracy"/>.</param>
/// <param name="PrimaryMetric">The metric the task reports as its headline.</param>
/// <param name="Outcomes">Per-item scores, in item order.</param>
/// <param name="Skipped">Records skipped while loading (unlabelled).</param>
public sealed record MultipleChoiceResult(
    string Task, int Shots, double Accuracy, double AccuracyStdErr, double NormalizedAccuracy, double NormalizedAccuracyStdErr,
    ChoiceMetric PrimaryMetric, IReadOnlyList<ChoiceOutcome> Outcomes, int Skipped)
{
    /// <summary>Number of evaluated items.</summary>
    public int Count => Outcomes.Count;

    /// <summary>The headline metric as a report row ("acc" or "acc_norm").</summary>
    public TaskScore ToScore() => PrimaryMetric == ChoiceMetric.NormalizedAccuracy
        ? new TaskScore(Task, "acc_norm", NormalizedAccuracy, true, NormalizedAccuracyStdErr, Count, Skipped)
        : new TaskScore(Task, "acc", Accuracy, true, AccuracyStdErr, Count, Skipped);
}
