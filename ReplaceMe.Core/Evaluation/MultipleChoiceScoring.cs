using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>Scores every choice of every item in batches and aggregates acc / acc_norm with standard errors.</summary>
internal static class MultipleChoiceScoring
{
    public static MultipleChoiceResult Run(
        ITransformerAdapter model, ITextTokenizer tokenizer, MultipleChoiceTask task, EvaluationOptions options,
        IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        var items = options.Limit is { } limit ? task.Items.Take(limit).ToArray() : task.Items.ToArray();
        if (items.Length == 0) throw new ArgumentException($"Task '{task.Name}' has no items.", nameof(task));

        var rows = new List<ScoreRow>();
        for (int i = 0; i < items.Length; i++)
        {
            string prefix = FewShot.Prefix(task, i, options);
            var item = items[i];
            for (int c = 0; c < item.ChoiceCount; c++)
            {
                var (ctx, cont) = ContinuationEncoder.Encode(tokenizer, prefix + item.Contexts[c], item.Continuations[c], options.AddBos);
                rows.Add(ContinuationEncoder.Row(ctx, cont, options.MaxLength));
            }
        }

        var scores = TokenScorer.Score(model, rows, tokenizer.PadId, options, $"multiple-choice task {task.Name}",
            done => progress?.Report(new PruningProgress("evaluate", (double)done / rows.Count, Message: $"{task.Name}: {done}/{rows.Count} requests")),
            progress, cancellationToken);

        var outcomes = new ChoiceOutcome[items.Length];
        int next = 0;
        for (int i = 0; i < items.Length; i++)
        {
            var item = items[i];
            var ll = new double[item.ChoiceCount];
            for (int c = 0; c < ll.Length; c++) ll[c] = scores[next++].LogProb;
            var normalized = ll.Select((v, c) => v / item.NormalizationLengths[c]).ToArray();
            outcomes[i] = new ChoiceOutcome(ll, ArgMax(ll), ArgMax(normalized), item.Label);
        }

        var acc = outcomes.Select(o => o.Predicted == o.Label ? 1.0 : 0.0).ToArray();
        var accNorm = outcomes.Select(o => o.PredictedNormalized == o.Label ? 1.0 : 0.0).ToArray();
        return new MultipleChoiceResult(task.Name, options.Shots, acc.Average(), StdErr(acc), accNorm.Average(), StdErr(accNorm),
            task.PrimaryMetric, outcomes, task.SkippedItems);
    }

    internal static int ArgMax(IReadOnlyList<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Count; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>Standard error of a mean: sample standard deviation (n - 1) / √n, as the harness reports it.</summary>
    internal static double StdErr(IReadOnlyList<double> values)
    {
        int n = values.Count;
        if (n < 2) return 0;
        double mean = values.Average();
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (n - 1);
        return Math.Sqrt(variance / n);
    }
}
