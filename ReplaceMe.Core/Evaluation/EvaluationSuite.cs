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

    /// <summary>
    /// Two-sided confidence interval for <see cref="Value"/> from <see cref="StdErr"/>, or null without a standard
    /// error. The quantile is Student's t with <see cref="Count"/> − 1 degrees of freedom (the normal one from 1000
    /// items on, or when the count is unknown), from MathNet.Numerics. Perplexities (metric "ppl") get the interval on
    /// the log scale, <c>exp(log v ± q·SE/v)</c>, which stays positive and is asymmetric as it should be.
    /// </summary>
    /// <param name="level">Coverage, in (0, 1); 0.95 by default.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="level"/> is not in (0, 1).</exception>
    public (double Lower, double Upper)? ConfidenceInterval(double level = 0.95)
    {
        if (!(level > 0 && level < 1)) throw new ArgumentOutOfRangeException(nameof(level), level, "The coverage level must be in (0, 1).");
        if (StdErr is not double se || !double.IsFinite(se) || !double.IsFinite(Value)) return null;
        double p = 1 - (1 - level) / 2;
        double q = Count is >= 2 and < 1000
            ? MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, Count - 1, p)
            : MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, p);
        if (Metric == "ppl" && Value > 0)
        {
            double half = q * se / Value;
            return (Value * Math.Exp(-half), Value * Math.Exp(half));
        }
        return (Value - q * se, Value + q * se);
    }
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
