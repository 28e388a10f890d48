namespace ReplaceMe.Core.Evaluation;

/// <summary>How the model scored one item.</summary>
/// <param name="LogLikelihoods">Summed continuation log-probability of each choice.</param>
/// <param name="Predicted">argmax of <paramref name="LogLikelihoods"/> (first on ties).</param>
/// <param name="PredictedNormalized">argmax of log-likelihood / character length.</param>
/// <param name="Label">The correct choice.</param>
public sealed record ChoiceOutcome(IReadOnlyList<double> LogLikelihoods, int Predicted, int PredictedNormalized, int Label)
{
    /// <summary>Summed continuation log-probability of each choice.</summary>
    public IReadOnlyList<double> LogLikelihoods { get; } = LogLikelihoods;

    /// <summary>argmax of <see cref="LogLikelihoods"/> (first on ties).</summary>
    public int Predicted { get; } = Predicted;

    /// <summary>argmax of log-likelihood / character length.</summary>
    public int PredictedNormalized { get; } = PredictedNormalized;

    /// <summary>The correct choice.</summary>
    public int Label { get; } = Label;
}

/// <summary>Accuracy of a model on a multiple-choice task, lm-evaluation-harness style.</summary>
/// <param name="Task">Task name.</param>
/// <param name="Shots">Few-shot examples per prompt.</param>
/// <param name="Accuracy"><c>acc</c>: fraction of items whose highest log-likelihood is the label.</param>
/// <param name="AccuracyStdErr">Standard error of <see cref="Accuracy"/>: sample standard deviation / √n (0 when n &lt; 2).</param>
/// <param name="NormalizedAccuracy"><c>acc_norm</c>: the same after dividing by each choice's length in characters.</param>
/// <param name="NormalizedAccuracyStdErr">Standard error of <see cref="NormalizedAccuracy"/>.</param>
/// <param name="PrimaryMetric">The metric the task reports as its headline.</param>
/// <param name="Outcomes">Per-item scores, in item order.</param>
/// <param name="Skipped">Records skipped while loading (unlabelled).</param>
public sealed record MultipleChoiceResult(
    string Task, int Shots, double Accuracy, double AccuracyStdErr, double NormalizedAccuracy, double NormalizedAccuracyStdErr,
    ChoiceMetric PrimaryMetric, IReadOnlyList<ChoiceOutcome> Outcomes, int Skipped)
{
    /// <summary>Task name.</summary>
    public string Task { get; } = Task;

    /// <summary>Few-shot examples per prompt.</summary>
    public int Shots { get; } = Shots;

    /// <summary><c>acc</c>: fraction of items whose highest log-likelihood is the label.</summary>
    public double Accuracy { get; } = Accuracy;

    /// <summary>Standard error of <see cref="Accuracy"/>: sample standard deviation / √n (0 when n &lt; 2).</summary>
    public double AccuracyStdErr { get; } = AccuracyStdErr;

    /// <summary><c>acc_norm</c>: the same after dividing by each choice's length in characters.</summary>
    public double NormalizedAccuracy { get; } = NormalizedAccuracy;

    /// <summary>Standard error of <see cref="NormalizedAccuracy"/>.</summary>
    public double NormalizedAccuracyStdErr { get; } = NormalizedAccuracyStdErr;

    /// <summary>The metric the task reports as its headline.</summary>
    public ChoiceMetric PrimaryMetric { get; } = PrimaryMetric;

    /// <summary>Per-item scores, in item order.</summary>
    public IReadOnlyList<ChoiceOutcome> Outcomes { get; } = Outcomes;

    /// <summary>Records skipped while loading (unlabelled).</summary>
    public int Skipped { get; } = Skipped;



    /// <summary>Number of evaluated items.</summary>
    public int Count => Outcomes.Count;

    /// <summary>The headline metric as a report row ("acc" or "acc_norm").</summary>
    public TaskScore ToScore() => PrimaryMetric == ChoiceMetric.NormalizedAccuracy
        ? new TaskScore(Task, "acc_norm", NormalizedAccuracy, true, NormalizedAccuracyStdErr, Count, Skipped)
        : new TaskScore(Task, "acc", Accuracy, true, AccuracyStdErr, Count, Skipped);
}
