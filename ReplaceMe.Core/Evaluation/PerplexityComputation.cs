using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Sliding-window perplexity, Hugging Face style: windows of <c>MaxLength</c> tokens start every <c>Stride</c>
/// tokens; each window scores only the tokens that no earlier window scored, so every token after the first of a
/// sequence is scored exactly once, with up to <c>MaxLength - Stride</c> tokens of extra context. With
/// <c>Stride == MaxLength</c> the first token of each window has no context in it and is not scored.
/// </summary>
internal static class PerplexityComputation
{
    public static PerplexityResult Run(
        ITransformerAdapter model, ITextTokenizer tokenizer, string corpus, IReadOnlyList<string> documents,
        EvaluationOptions options, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (documents.Count == 0) throw new ArgumentException($"Corpus '{corpus}' has no documents.", nameof(documents));
        var (sequences, skipped) = Tokenize(tokenizer, documents, options);
        int length = options.MaxLength, stride = options.Stride ?? options.MaxLength;
        var rows = new List<ScoreRow>();
        var owner = new List<int>(); // sequence index of each row
        for (int q = 0; q < sequences.Count; q++)
        {
            int before = rows.Count;
            rows.AddRange(Windows(sequences[q], length, stride));
            for (int r = before; r < rows.Count; r++) owner.Add(q);
        }
        if (rows.Count == 0)
            throw new ArgumentException($"Corpus '{corpus}': no document has two or more tokens, so there is nothing to score ({skipped} skipped).", nameof(documents));

        var scores = TokenScorer.Score(model, rows, tokenizer.PadId, options, $"perplexity of {corpus}",
            done => progress?.Report(new PruningProgress("evaluate", (double)done / rows.Count, Message: $"{corpus}: perplexity window {done}/{rows.Count}")),
            progress, cancellationToken);
        double nll = 0;
        long tokens = 0;
        var perSequenceNll = new double[sequences.Count];
        var perSequenceTokens = new long[sequences.Count];
        for (int r = 0; r < scores.Length; r++)
        {
            var s = scores[r];
            nll -= s.LogProb;
            tokens += s.Count;
            perSequenceNll[owner[r]] -= s.LogProb;
            perSequenceTokens[owner[r]] += s.Count;
        }
        int evaluated = options.DocumentMode == DocumentMode.Separate ? sequences.Count : documents.Count - skipped;
        double mean = nll / tokens;
        double? meanStdErr = ClusteredStdErr(perSequenceNll, perSequenceTokens, mean);
        return new PerplexityResult(corpus, Math.Exp(mean), mean, tokens, evaluated, skipped, rows.Count)
        {
            MeanNllStdErr = meanStdErr,
            PerplexityStdErr = meanStdErr * Math.Exp(mean),
        };
    }

    /// <summary>
    /// Standard error of the token-weighted mean m = ΣS_i / ΣN_i with documents as the sampling units (tokens of one
    /// document are not independent): √(k/(k−1) · Σ(S_i − m·N_i)²) / ΣN_i, the ratio estimator's linearised
    /// (cluster-robust) standard error. Null with fewer than two documents (one concatenated stream).
    /// </summary>
    internal static double? ClusteredStdErr(IReadOnlyList<double> sums, IReadOnlyList<long> counts, double mean)
    {
        int k = sums.Count;
        if (k < 2) return null;
        double total = 0, squares = 0;
        for (int i = 0; i < k; i++)
        {
            total += counts[i];
            double e = sums[i] - mean * counts[i];
            squares += e * e;
        }
        return total > 0 ? Math.Sqrt(squares * k / (k - 1)) / total : null;
    }

    /// <summary>Token sequences to score and the number of documents skipped (blank, or under two tokens when separate).</summary>
    internal static (List<IReadOnlyList<int>> Sequences, int Skipped) Tokenize(ITextTokenizer tokenizer, IReadOnlyList<string> documents, EvaluationOptions options)
    {
        var sequences = new List<IReadOnlyList<int>>();
        int skipped = 0;
        if (options.DocumentMode == DocumentMode.Separate)
        {
            foreach (var doc in documents)
            {
                var ids = string.IsNullOrWhiteSpace(doc) ? [] : tokenizer.Encode(doc, options.AddBos);
                if (ids.Count < 2) skipped++;
                else sequences.Add(ids);
            }
            return (sequences, skipped);
        }

        int eos = tokenizer.EosId ?? throw new ArgumentException("DocumentMode.Concatenated joins documents with EOS, but the tokenizer has no EOS token.", nameof(tokenizer));
        var stream = new List<int>();
        foreach (var doc in documents)
        {
            if (string.IsNullOrWhiteSpace(doc)) { skipped++; continue; }
            if (stream.Count > 0) stream.Add(eos);
            stream.AddRange(tokenizer.Encode(doc, options.AddBos));
        }
        if (stream.Count >= 2) sequences.Add(stream);
        return (sequences, skipped);
    }

    /// <summary>The windows of one sequence: each row holds the window's tokens and the first position it scores.</summary>
    internal static IEnumerable<ScoreRow> Windows(IReadOnlyList<int> sequence, int length, int stride)
    {
        int n = sequence.Count, previousEnd = 0;
        for (int begin = 0; ; begin += stride)
        {
            int end = Math.Min(begin + length, n);
            int newTokens = end - previousEnd;
            int firstScored = Math.Max(1, (end - begin) - newTokens);
            if (firstScored < end - begin)
                yield return new ScoreRow(Slice(sequence, begin, end), firstScored);
            previousEnd = end;
            if (end == n) yield break;
        }
    }

    private static int[] Slice(IReadOnlyList<int> sequence, int begin, int end)
    {
        var slice = new int[end - begin];
        for (int i = begin; i < end; i++) slice[i - begin] = sequence[i];
        return slice;
    }
}
