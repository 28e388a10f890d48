namespace ReplaceMe.Core.Evaluation;

/// <summary>A named text corpus for perplexity.</summary>
/// <param name="Name">Name used in reports.</param>
/// <param name="Documents">The documents.</param>
public sealed record TextCorpus(string Name, IReadOnlyList<string> Documents);

/// <summary>Everything to evaluate a model on; the same suite is run on the original and the pruned models.</summary>
/// <param name="Corpora">Perplexity corpora.</param>
/// <param name="ClozeTasks">Last-word tasks (LAMBADA, or built from text).</param>
/// <param name="MultipleChoiceTasks">Multiple-choice tasks.</param>
public sealed record EvaluationSuite(
    IReadOnlyList<TextCorpus> Corpora,
    IReadOnlyList<ClozeTask> ClozeTasks,
    IReadOnlyList<MultipleChoiceTask> MultipleChoiceTasks)
{
    /// <summary>True when the suite holds nothing to evaluate.</summary>
    public bool IsEmpty => Corpora.Count == 0 && ClozeTasks.Count == 0 && MultipleChoiceTasks.Count == 0;
}

/// <summary>One reported number: a task's metric for one model.</summary>
/// <param name="Task">Task or corpus name.</param>
/// <param name="Metric">"acc", "acc_norm" or "ppl".</param>
/// <param name="Value">The value (accuracies in [0, 1]).</param>
/// <param name="HigherIsBetter">False for perplexities; only higher-is-better metrics enter averages.</param>
/// <param name="StdErr">Standard error, when defined.</param>
/// <param name="Count">Items or documents evaluated.</param>
/// <param name="Skipped">Items or documents skipped.</param>
public sealed record TaskScore(string Task, string Metric, double Value, bool HigherIsBetter, double? StdErr = null, int Count = 0, int Skipped = 0)
{
    /// <summary>"task metric", the report's column key.</summary>
    public string Key => Task + " " + Metric;
}

/// <summary>All report rows of one model.</summary>
/// <param name="Model">Model name (folder name or label).</param>
/// <param name="Scores">Its scores.</param>
public sealed record ModelScores(string Model, IReadOnlyList<TaskScore> Scores)
{
    /// <summary>Mean of the higher-is-better scores (accuracies), or null when there are none.</summary>
    public double? Average
    {
        get
        {
            var acc = Scores.Where(s => s.HigherIsBetter).Select(s => s.Value).ToArray();
            return acc.Length == 0 ? null : acc.Average();
        }
    }

    /// <summary>Standard error of <see cref="Average"/>: √(Σ SE²) / k over the k accuracies, treating tasks as
    /// independent; null when there is no accuracy or one of them has no standard error.</summary>
    public double? AverageStdErr
    {
        get
        {
            var acc = Scores.Where(s => s.HigherIsBetter).ToArray();
            if (acc.Length == 0 || acc.Any(s => s.StdErr is null)) return null;
            return Math.Sqrt(acc.Sum(s => s.StdErr!.Value * s.StdErr.Value)) / acc.Length;
        }
    }
}
