using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Evaluation;

/// <summary>A token sequence and the first position whose token is scored (tokens <c>[FirstScored, Count)</c> are
/// predicted from everything before them; <c>FirstScored ≥ 1</c>).</summary>
internal readonly record struct ScoreRow(IReadOnlyList<int> Tokens, int FirstScored);

/// <summary>Sum of log-probabilities of a row's scored tokens, how many were scored, and whether each was the argmax.</summary>
internal readonly record struct RowScore(double LogProb, int Count, bool Greedy);

/// <summary>
/// The one place that runs the model for evaluation: batches rows (longest first), pads them, runs
/// Embed → all blocks → Head, and scores the float32 logits: log-probabilities of the scored tokens with the
/// log-sum-exp in float64, summed in float64.
/// A <see cref="StreamedDecoderModel"/> is scored block-major instead (<see cref="BlockMajorScorer"/>): same batches,
/// same scores, each block and each LM-head chunk read once.
/// </summary>
internal static class TokenScorer
{
    /// <summary>Scores <paramref name="rows"/>: block-major for a streamed model, batch-major otherwise.</summary>
    /// <param name="model">The model.</param>
    /// <param name="rows">Rows to score.</param>
    /// <param name="padId">Padding token id.</param>
    /// <param name="options">Batch size, padding side, and the hidden-state budget and spill folder of a block-major run.</param>
    /// <param name="passName">Words for the per-block progress lines of a block-major run ("perplexity of wiki").</param>
    /// <param name="rowsDone">Rows scored so far (batch-major: after every batch; block-major: once at the end).</param>
    /// <param name="progress">Block-major only: one report per block and per LM-head chunk, with an ETA.</param>
    /// <param name="cancellationToken">Checked before every batch (block-major: every step).</param>
    public static RowScore[] Score(
        ITransformerAdapter model, IReadOnlyList<ScoreRow> rows, int padId, EvaluationOptions options, string passName,
        Action<int>? rowsDone, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        if (model is not StreamedDecoderModel streamed)
            return Score(model, rows, padId, options.BatchSize, options.PaddingSide, rowsDone, cancellationToken);
        var settings = new BlockMajorSettings(options.HiddenStateBudgetBytes, options.SpillDirectory, ScalarType.Float32);
        var scores = BlockMajorScorer.Score(streamed, rows, padId, options.BatchSize, options.PaddingSide, settings, passName, progress, cancellationToken);
        rowsDone?.Invoke(rows.Count);
        return scores;
    }

    /// <summary>Batch-major scoring: each batch runs through every block and the head before the next batch starts.</summary>
    public static RowScore[] Score(
        ITransformerAdapter model, IReadOnlyList<ScoreRow> rows, int padId, int batchSize, PaddingSide side,
        Action<int>? rowsDone, CancellationToken cancellationToken)
    {
        var results = new RowScore[rows.Count];
        int done = 0;
        foreach (var chunk in Batches(rows, batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            ScoreBatch(model, rows, chunk, padId, side, results);
            done += chunk.Length;
            rowsDone?.Invoke(done);
        }
        return results;
    }

    /// <summary>The row indices of each batch: longest rows first, so similar lengths share a batch and little compute goes to padding.</summary>
    internal static List<int[]> Batches(IReadOnlyList<ScoreRow> rows, int batchSize)
    {
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(i => rows[i].Tokens.Count).ThenBy(i => i).ToArray();
        var batches = new List<int[]>();
        for (int start = 0; start < order.Length; start += batchSize)
            batches.Add(order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray());
        return batches;
    }

    /// <summary>The error for a non-finite log-probability of <paramref name="target"/> in row <paramref name="row"/>.</summary>
    internal static NonFiniteOutputException NonFinite(ITransformerAdapter model, long target, int row, double value) =>
        new($"The model's log-probability of token {target} in evaluated sequence {row} is " +
            $"{value.ToString(System.Globalization.CultureInfo.InvariantCulture)}: its weights contain NaN/Inf or the compute dtype {model.DType} overflowed (try float32).");

    private static void ScoreBatch(ITransformerAdapter model, IReadOnlyList<ScoreRow> rows, int[] chunk, int padId, PaddingSide side, RowScore[] results)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var sequences = chunk.Select(i => rows[i].Tokens).ToArray();
        using var batch = TokenBatch.FromSequences(sequences, padId, side, model.Device);
        int b = chunk.Length, width = (int)batch.InputIds.shape[1];
        if (width < 2) return; // nothing to predict; callers never send such rows

        // Target of logit position p is the token at p + 1; mark the positions whose target is scored.
        var targets = new long[b * (width - 1)];
        var scored = new bool[b * (width - 1)];
        for (int r = 0; r < b; r++)
        {
            var row = rows[chunk[r]];
            int offset = side == PaddingSide.Left ? width - row.Tokens.Count : 0;
            for (int i = Math.Max(1, row.FirstScored); i < row.Tokens.Count; i++)
            {
                int p = r * (width - 1) + offset + i - 1;
                targets[p] = row.Tokens[i];
                scored[p] = true;
            }
        }

        using var state = model.Embed(batch.InputIds, batch.AttentionMask);
        model.RunBlocks(state, 0, model.BlockCount);
        var logits = model.Head(state);                                        // [B, T, V]
        var predicting = logits.narrow(1, 0, width - 1).to_type(ScalarType.Float32); // [B, T-1, V]
        var target = torch.tensor(targets, [b, width - 1], ScalarType.Int64, model.Device);
        // log p = logit − logsumexp, with the logsumexp in float64 one sequence at a time: LibTorch's float32
        // log_softmax on the CPU is off by a few 1e-6 per token at a 32000-token vocabulary (always the same way),
        // which would bias the perplexity. The float32 logits are what is scored, as before.
        var values = new double[b * (width - 1)];
        var hits = new bool[b * (width - 1)];
        for (int r = 0; r < b; r++)
        {
            using var rowScope = torch.NewDisposeScope();
            var row = predicting[r].to_type(ScalarType.Float64);                    // [T-1, V]
            var rowTarget = target[r].unsqueeze(-1);                               // [T-1, 1]
            var logProb = HeldScalars.AddScaled(row.gather(-1, rowTarget).squeeze(-1), row.logsumexp(-1), -1.0); // [T-1]
            var hit = row.argmax(-1).eq(target[r]);                                // [T-1]
            logProb.cpu().data<double>().CopyTo(values, r * (width - 1));
            hit.cpu().data<bool>().CopyTo(hits, r * (width - 1));
        }

        for (int r = 0; r < b; r++)
        {
            double sum = 0;
            int count = 0;
            bool greedy = true;
            for (int p = r * (width - 1); p < (r + 1) * (width - 1); p++)
            {
                if (!scored[p]) continue; // padding and unscored context: their logits may be anything
                if (!double.IsFinite(values[p]))
                    throw NonFinite(model, targets[p], chunk[r], values[p]);
                sum += values[p];
                count++;
                greedy &= hits[p];
            }
            results[chunk[r]] = new RowScore(sum, count, greedy);
        }
    }
}
