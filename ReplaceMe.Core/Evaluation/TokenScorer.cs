using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
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
/// Embed → all blocks → Head, and gathers float32 log-softmax values of the scored tokens, summed in float64.
/// </summary>
internal static class TokenScorer
{
    public static RowScore[] Score(
        ITransformerAdapter model, IReadOnlyList<ScoreRow> rows, int padId, int batchSize, PaddingSide side,
        Action<int>? rowsDone, CancellationToken cancellationToken)
    {
        var results = new RowScore[rows.Count];
        // Longest first: similar lengths share a batch, so little compute goes to padding.
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(i => rows[i].Tokens.Count).ThenBy(i => i).ToArray();
        int done = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray();
            ScoreBatch(model, rows, chunk, padId, side, results);
            done += chunk.Length;
            rowsDone?.Invoke(done);
        }
        return results;
    }

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
        var logProbs = predicting.log_softmax(-1);                             // [B, T-1, V]
        var target = torch.tensor(targets, [b, width - 1], ScalarType.Int64, model.Device);
        var gathered = logProbs.gather(-1, target.unsqueeze(-1)).squeeze(-1);  // [B, T-1]
        var isArgmax = logProbs.argmax(-1).eq(target);                         // [B, T-1]
        var values = gathered.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        var hits = isArgmax.cpu().data<bool>().ToArray();

        for (int r = 0; r < b; r++)
        {
            double sum = 0;
            int count = 0;
            bool greedy = true;
            for (int p = r * (width - 1); p < (r + 1) * (width - 1); p++)
            {
                if (!scored[p]) continue; // padding and unscored context: their logits may be anything
                if (!double.IsFinite(values[p]))
                    throw new NonFiniteOutputException(
                        $"The model's log-probability of token {targets[p]} in evaluated sequence {chunk[r]} is " +
                        $"{values[p].ToString(System.Globalization.CultureInfo.InvariantCulture)}: its weights contain NaN/Inf or the compute dtype {model.DType} overflowed (try float32).");
                sum += values[p];
                count++;
                greedy &= hits[p];
            }
            results[chunk[r]] = new RowScore(sum, count, greedy);
        }
    }
}
