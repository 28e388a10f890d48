using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Evaluation scoring of a <see cref="StreamedDecoderModel"/> that reads each block and each LM-head chunk once per
/// call, instead of once per batch. The batches are those of the batch-major <see cref="TokenScorer"/> (longest rows
/// first). First the blocks run block-major over every batch (<see cref="BlockMajorPass"/>: hidden states in RAM up to
/// the budget, then spilled). After the last block, each batch keeps only the final-normed hidden rows of its scored
/// positions. Then the head runs chunk-major: each vocabulary chunk is read once and multiplied with every batch's
/// rows. Per scored position a running maximum and a running sum of exponentials (float64, over float32 logits as in
/// the batch-major path) give the log-sum-exp; the target's logit is picked up in the chunk that holds it, and the
/// first arg-max across chunks gives the greedy flag. The log-probability is target logit − log-sum-exp, as in the
/// batch-major path (also float64 over float32 logits), so the scores equal the batch-major ones up to the float32
/// rounding of the logits (matrix products of other shapes).
/// </summary>
internal static class BlockMajorScorer
{
    /// <summary>The scored positions of one batch, in batch-major order (row by row, position by position).</summary>
    private sealed record Plan(int[] Rows, long[] Positions, long[] Targets, int[] Owner);

    /// <summary>Scores <paramref name="rows"/> (see the class remarks).</summary>
    /// <param name="model">The streamed model.</param>
    /// <param name="rows">Rows to score.</param>
    /// <param name="padId">Padding token id.</param>
    /// <param name="batchSize">Rows per batch.</param>
    /// <param name="side">Padding side.</param>
    /// <param name="settings">Hidden-state budget, spill folder and dtype of the block-major pass.</param>
    /// <param name="passName">Words for the progress lines.</param>
    /// <param name="progress">One report per block ("block 3/8: …, ETA 12s") and per head chunk ("LM head chunk 2/5: …").</param>
    /// <param name="cancellationToken">Checked before every (block, batch) and (head chunk, batch) step.</param>
    public static RowScore[] Score(
        StreamedDecoderModel model, IReadOnlyList<ScoreRow> rows, int padId, int batchSize, PaddingSide side,
        BlockMajorSettings settings, string passName, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        var results = new RowScore[rows.Count];
        if (rows.Count == 0) return results;
        // With every block removed there is no block pass to park the final rows after: the head alone, batch by batch.
        if (model.BlockCount == 0) return TokenScorer.Score(model, rows, padId, batchSize, side, null, cancellationToken);
        var groups = TokenScorer.Batches(rows, batchSize);
        using var batches = new TokenBatchList(groups.Select(g => TokenBatch.FromSequences(g.Select(i => rows[i].Tokens).ToArray(), padId, side)));
        var plans = new Plan[groups.Count];
        for (int b = 0; b < groups.Count; b++) plans[b] = PlanOf(rows, groups[b], (int)batches[b].InputIds.shape[1], side);

        int last = model.BlockCount - 1, d = model.HiddenSize;
        var head = new HeadAccumulator(plans);
        BlockMajorPass.Run(model, batches, model.BlockCount, _ => false,
            (k, b, state, _, store) =>
            {
                if (k != last || plans[b].Positions.Length == 0) return;
                var index = tensor(plans[b].Positions, ScalarType.Int64, model.Device);
                var normed = model.FinalNorm(state.Hidden).reshape(-1, d);              // [B·T, d]
                store.Put(Key(b), normed.index_select(0, index));                         // [N_b, d]
            },
            extraBytes: 0, settings, "evaluate", passName, progress, cancellationToken,
            afterPass: store => head.Run(model, store, passName, progress, cancellationToken));

        for (int b = 0; b < plans.Length; b++)
        {
            var plan = plans[b];
            foreach (int row in plan.Rows) results[row] = new RowScore(0, 0, true);
            for (int j = 0; j < plan.Positions.Length; j++)
            {
                double value = head.LogProb(b, j);
                if (!double.IsFinite(value)) throw TokenScorer.NonFinite(model, plan.Targets[j], plan.Owner[j], value);
                var r = results[plan.Owner[j]];
                results[plan.Owner[j]] = new RowScore(r.LogProb + value, r.Count + 1, r.Greedy && head.IsArgmax(b, j));
            }
        }
        return results;
    }

    /// <summary>Store key of batch <paramref name="batch"/>'s final rows (negative: the pass's own keys are the batch indices).</summary>
    private static int Key(int batch) => -(batch + 1);

    /// <summary>The scored positions of a batch, as indices into its flattened <c>[B·T]</c> hidden rows: the logit at
    /// position p predicts the token at p + 1, as in <see cref="TokenScorer"/>.</summary>
    private static Plan PlanOf(IReadOnlyList<ScoreRow> rows, int[] group, int width, PaddingSide side)
    {
        var positions = new List<long>();
        var targets = new List<long>();
        var owner = new List<int>();
        for (int r = 0; r < group.Length; r++)
        {
            var row = rows[group[r]];
            int offset = side == PaddingSide.Left ? width - row.Tokens.Count : 0;
            for (int i = Math.Max(1, row.FirstScored); i < row.Tokens.Count; i++)
            {
                positions.Add((long)r * width + offset + i - 1);
                targets.Add(row.Tokens[i]);
                owner.Add(group[r]);
            }
        }
        return new Plan(group, [.. positions], [.. targets], [.. owner]);
    }

    /// <summary>Running log-sum-exp, target logit and arg-max of every scored position, filled chunk by chunk.</summary>
    private sealed class HeadAccumulator(Plan[] plans)
    {
        private readonly double[][] _max = plans.Select(p => Filled(p.Positions.Length, double.NegativeInfinity)).ToArray();
        private readonly double[][] _sum = plans.Select(p => new double[p.Positions.Length]).ToArray();
        private readonly double[][] _target = plans.Select(p => Filled(p.Positions.Length, double.NaN)).ToArray();
        private readonly double[][] _best = plans.Select(p => Filled(p.Positions.Length, double.NegativeInfinity)).ToArray();
        private readonly long[][] _argmax = plans.Select(p => new long[p.Positions.Length]).ToArray();

        /// <summary>log p(target) of scored position <paramref name="j"/> of batch <paramref name="b"/>.</summary>
        public double LogProb(int b, int j) => _target[b][j] - (_max[b][j] + Math.Log(_sum[b][j]));

        /// <summary>Whether the target is the first arg-max of the logits.</summary>
        public bool IsArgmax(int b, int j) => _argmax[b][j] == plans[b].Targets[j];

        public void Run(StreamedDecoderModel model, HiddenStateStore store, string passName, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
        {
            long vocab = model.Config.VocabSize, chunkRows = model.HeadChunkRows;
            int chunks = (int)((vocab + chunkRows - 1) / chunkRows);
            var clock = Stopwatch.StartNew();
            using var noGrad = no_grad();
            for (int c = 0; c < chunks; c++)
            {
                long first = c * chunkRows, n = Math.Min(chunkRows, vocab - first);
                using var weight = model.ReadHeadChunk(first, n);                          // [n, d]
                for (int b = 0; b < plans.Length; b++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (plans[b].Positions.Length == 0) continue;
                    using var scope = NewDisposeScope();
                    var rows = store.Read(Key(b));                                          // [N, d]
                    // float32 logits as the batch-major path scores them, then float64 for the running sums.
                    var logits = nn.functional.linear(rows, weight).to_type(ScalarType.Float32).to_type(ScalarType.Float64); // [N, n]
                    var (top, where) = logits.max(1);                                       // [N], [N]
                    var shifted = HeldScalars.AddScaled(logits, top.unsqueeze(1), -1.0).exp_().sum(1); // [N]
                    Accumulate(b, first, n, logits, top.cpu().data<double>().ToArray(), shifted.cpu().data<double>().ToArray(),
                        where.cpu().data<long>().ToArray());
                }
                double perChunk = clock.Elapsed.TotalSeconds / (c + 1);
                var eta = TimeSpan.FromSeconds(Math.Round(perChunk * (chunks - c - 1)));
                progress?.Report(new PruningProgress("evaluate", (c + 1.0) / chunks,
                    Message: string.Create(CultureInfo.InvariantCulture, $"LM head chunk {c + 1}/{chunks}: {passName}, ETA {BlockMajorPass.Format(eta)}")));
            }
        }

        private void Accumulate(int b, long first, long n, Tensor logits, double[] top, double[] shifted, long[] where)
        {
            double[] max = _max[b], sum = _sum[b], best = _best[b];
            long[] argmax = _argmax[b], targets = plans[b].Targets;
            for (int j = 0; j < top.Length; j++)
            {
                double m = Math.Max(max[j], top[j]);
                sum[j] = (double.IsNegativeInfinity(max[j]) ? 0 : sum[j] * Math.Exp(max[j] - m)) + shifted[j] * Math.Exp(top[j] - m);
                max[j] = m;
                if (top[j] > best[j]) // strict: on a tie the earlier chunk keeps it, as argmax over the whole row would
                {
                    best[j] = top[j];
                    argmax[j] = first + where[j];
                }
            }
            var inChunk = Enumerable.Range(0, targets.Length).Where(j => targets[j] >= first && targets[j] < first + n).ToArray();
            if (inChunk.Length == 0) return;
            var at = tensor(inChunk.Select(j => (long)j).ToArray(), ScalarType.Int64, logits.device);
            var column = tensor(inChunk.Select(j => targets[j] - first).ToArray(), ScalarType.Int64, logits.device);
            var picked = logits.index_select(0, at).gather(1, column.unsqueeze(1)).squeeze(1).cpu().data<double>().ToArray();
            for (int i = 0; i < inChunk.Length; i++) _target[b][inChunk[i]] = picked[i];
        }

        private static double[] Filled(int n, double value)
        {
            var a = new double[n];
            Array.Fill(a, value);
            return a;
        }
    }
}
