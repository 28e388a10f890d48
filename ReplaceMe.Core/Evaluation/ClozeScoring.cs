using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>Scores each cloze target given its context: greedy exact match and summed log-probability.</summary>
internal static class ClozeScoring
{
    public static ClozeResult Run(
        ITransformerAdapter model, ITextTokenizer tokenizer, ClozeTask task, EvaluationOptions options,
        IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        var items = options.Limit is { } limit ? task.Items.Take(limit).ToArray() : task.Items.ToArray();
        if (items.Length == 0)
            throw new ArgumentException($"Cloze task '{task.Name}' has no items ({task.SkippedItems} skipped while building it).", nameof(task));

        var rows = items.Select(item =>
        {
            var (ctx, cont) = ContinuationEncoder.Encode(tokenizer, item.Context, item.Target, options.AddBos);
            return ContinuationEncoder.Row(ctx, cont, options.MaxLength);
        }).ToList();
        var scores = TokenScorer.Score(model, rows, tokenizer.PadId, options, $"cloze task {task.Name}",
            done => progress?.Report(new PruningProgress("evaluate", (double)done / rows.Count, Message: $"{task.Name}: {done}/{rows.Count} items")),
            progress, cancellationToken);

        var hits = scores.Select(s => s.Greedy ? 1.0 : 0.0).ToArray();
        var logProbs = scores.Select(s => s.LogProb).ToArray();
        double meanLogProb = logProbs.Average(), perplexity = Math.Exp(-meanLogProb);
        return new ClozeResult(task.Name, hits.Average(), MultipleChoiceScoring.StdErr(hits), perplexity,
            scores.Sum(s => (long)s.Count), items.Length, task.SkippedItems)
        {
            PerplexityStdErr = items.Length < 2 ? null : perplexity * MultipleChoiceScoring.StdErr(logProbs),
        };
    }
}
