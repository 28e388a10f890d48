namespace ReplaceMe.Core.Evaluation;

/// <summary>Last-word accuracy and target-word perplexity, as lm-evaluation-harness reports LAMBADA.</summary>
/// <param name="Task">Task name.</param>
/// <param name="Accuracy">Fraction of items whose every target token is the model's argmax (greedy decoding yields the word).</param>
/// <param name="AccuracyStdErr">Sample standard deviation / √n (0 when n &lt; 2).</param>
/// <param name="Perplexity">exp(−mean over items of the target word's summed log-probability) — per word, not per token.</param>
/// <param name="TargetTokens">Total target tokens scored.</param>
/// <param name="Count">Items evaluated.</param>
/// <param name="Skipped">Items skipped while building or loading the task.</param>
public sealed record ClozeResult(string Task, double Accuracy, double AccuracyStdErr, double Perplexity, long TargetTokens, int Count, int Skipped)
{
    /// <summary>Task name.</summary>
    public string Task { get; } = Task;

    /// <summary>Fraction of items whose every target token is the model's argmax (greedy decoding yields the word).</summary>
    public double Accuracy { get; } = Accuracy;

    /// <summary>Sample standard deviation / √n (0 when n &lt; 2).</summary>
    public double AccuracyStdErr { get; } = AccuracyStdErr;

    /// <summary>exp(−mean over items of the target word's summed log-probability) — per word, not per token.</summary>
    public double Perplexity { get; } = Perplexity;

    /// <summary>Total target tokens scored.</summary>
    public long TargetTokens { get; } = TargetTokens;

    /// <summary>Items evaluated.</summary>
    public int Count { get; } = Count;

    /// <summary>Items skipped while building or loading the task.</summary>
    public int Skipped { get; } = Skipped;



    /// <summary>Standard error of <see cref="Perplexity"/> (delta method over items: perplexity × the standard error of
    /// the mean target log-probability); null with fewer than two items.</summary>
    public double? PerplexityStdErr { get; init; }

    /// <summary>Two report rows: "acc" (higher is better) and "ppl" (lower is better), with standard errors and counts.</summary>
    public IReadOnlyList<TaskScore> ToScores() =>
    [
        new TaskScore(Task, "acc", Accuracy, true, AccuracyStdErr, Count, Skipped),
        new TaskScore(Task, "ppl", Perplexity, false, PerplexityStdErr, Count, Skipped),
    ];
}
