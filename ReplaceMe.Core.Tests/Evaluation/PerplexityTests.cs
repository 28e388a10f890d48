using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

public class PerplexityTests
{
    private static readonly string[] Documents =
    [
        "The cat sat on the mat and looked at the dog for a long time.",
        "",
        "Hi",
        "A short one.",
        "Once upon a time there was a little girl who liked to run in the park with her friends every day.",
        "x",
    ];

    /// <summary>Hugging Face's sliding window, written out independently: window [begin, end), scores the tokens after prevEnd.</summary>
    private static (double Nll, long Tokens) Reference(TableModel model, IReadOnlyList<int> seq, int length, int stride)
    {
        double nll = 0;
        long tokens = 0;
        int prevEnd = 0;
        for (int begin = 0; begin < seq.Count; begin += stride)
        {
            int end = Math.Min(begin + length, seq.Count);
            for (int t = prevEnd; t < end; t++)
            {
                int inWindow = t - begin;
                if (inWindow < 1) continue; // the first token of a window has nothing before it in the window
                nll -= model.LogProb(seq[t - 1], inWindow - 1, seq[t]);
                tokens++;
            }
            prevEnd = end;
            if (end == seq.Count) break;
        }
        return (nll, tokens);
    }

    [Theory]
    [InlineData(16, 16)]
    [InlineData(16, 8)]
    [InlineData(16, 5)]
    [InlineData(16, 1)]
    [InlineData(7, 3)]
    public void Separate_documents_match_an_independent_computation(int length, int stride)
    {
        var model = TableModel.Random(seed: 7, positions: 8);
        var tok = new CharTokenizer();
        var result = new ModelEvaluator(model, tok, new EvaluationOptions { MaxLength = length, Stride = stride, BatchSize = 3 })
            .Perplexity("toy", Documents);

        double nll = 0;
        long tokens = 0;
        var perDocument = new List<(double Nll, long Tokens)>();
        foreach (var doc in Documents.Where(d => d.Length > 0)) // "" has only BOS: skipped; "x" is BOS + x: one token
        {
            var (n, t) = Reference(model, tok.Encode(doc), length, stride);
            nll += n;
            tokens += t;
            perDocument.Add((n, t));
        }
        Assert.Equal(tokens, result.TokensEvaluated);
        Assert.Equal(nll / tokens, result.MeanNll, 5);
        Assert.Equal(Math.Exp(nll / tokens), result.Perplexity, 4);
        Assert.Equal(1, result.DocumentsSkipped);
        Assert.Equal(5, result.DocumentsEvaluated);

        // Standard error with documents as the units: the ratio estimator's linearisation, computed here directly.
        double mean = nll / tokens;
        int k = perDocument.Count;
        double residuals = perDocument.Sum(d => Math.Pow(d.Nll - mean * d.Tokens, 2));
        double expected = Math.Sqrt(residuals * k / (k - 1)) / tokens;
        Assert.True(expected > 0);
        Assert.Equal(expected, result.MeanNllStdErr!.Value, 6);
        Assert.Equal(result.Perplexity * expected, result.PerplexityStdErr!.Value, 5);
        var score = result.ToScore();
        Assert.Equal(result.PerplexityStdErr, score.StdErr);
        Assert.Equal(5, score.Count);
    }

    [Fact]
    public void A_single_stream_has_no_standard_error_and_identical_documents_have_none_to_speak_of()
    {
        var model = TableModel.Random(seed: 5);
        var tok = new CharTokenizer();
        var concatenated = new ModelEvaluator(model, tok, new EvaluationOptions { MaxLength = 12, DocumentMode = DocumentMode.Concatenated })
            .Perplexity("toy", Documents);
        Assert.Null(concatenated.MeanNllStdErr);
        Assert.Null(concatenated.ToScore().StdErr);
        var same = new ModelEvaluator(model, tok, new EvaluationOptions { MaxLength = 16 }).Perplexity("toy", ["abcabc", "abcabc", "abcabc"]);
        Assert.Equal(0, same.MeanNllStdErr!.Value, 12);
    }

    [Fact]
    public void Non_overlapping_windows_leave_the_first_token_of_each_window_unscored()
    {
        var model = TableModel.Random(seed: 3);
        var tok = new CharTokenizer();
        // 1 BOS + 39 characters = 40 tokens in 4 windows of 10: 4 first tokens are not predicted.
        var result = new ModelEvaluator(model, tok, new EvaluationOptions { MaxLength = 10 }).Perplexity("toy", [new string('a', 39)]);
        Assert.Equal(36, result.TokensEvaluated);
        Assert.Equal(4, result.Windows);
    }

    [Fact]
    public void Concatenated_documents_are_one_EOS_joined_stream()
    {
        var model = TableModel.Random(seed: 11);
        var tok = new CharTokenizer();
        var options = new EvaluationOptions { MaxLength = 12, Stride = 4, DocumentMode = DocumentMode.Concatenated };
        var result = new ModelEvaluator(model, tok, options).Perplexity("toy", Documents);

        var stream = new List<int>();
        foreach (var doc in Documents.Where(d => d.Length > 0))
        {
            if (stream.Count > 0) stream.Add(2);
            stream.AddRange(tok.Encode(doc));
        }
        var (nll, tokens) = Reference(model, stream, 12, 4);
        Assert.Equal(tokens, result.TokensEvaluated);
        Assert.Equal(nll / tokens, result.MeanNll, 5);
        Assert.Equal(1, result.DocumentsSkipped);
    }

    [Fact]
    public void Result_does_not_depend_on_batch_size_or_padding_side()
    {
        var model = TableModel.Random(seed: 5);
        var tok = new CharTokenizer();
        PerplexityResult Run(int batch, PaddingSide side) =>
            new ModelEvaluator(model, tok, new EvaluationOptions { MaxLength = 16, Stride = 6, BatchSize = batch, PaddingSide = side }).Perplexity("toy", Documents);

        var reference = Run(1, PaddingSide.Right);
        foreach (var (batch, side) in new[] { (2, PaddingSide.Right), (64, PaddingSide.Right), (1, PaddingSide.Left), (5, PaddingSide.Left), (64, PaddingSide.Left) })
        {
            var r = Run(batch, side);
            Assert.Equal(reference.TokensEvaluated, r.TokensEvaluated);
            Assert.Equal(reference.MeanNll, r.MeanNll, 5);
        }
    }

    [Fact]
    public void A_corpus_without_two_token_documents_is_rejected_with_the_skip_count()
    {
        var tok = new CharTokenizer();
        var evaluator = new ModelEvaluator(TableModel.Random(1), tok, new EvaluationOptions { AddBos = false });
        var ex = Assert.Throws<ArgumentException>(() => evaluator.Perplexity("tiny", ["a", " ", ""]));
        Assert.Contains("tiny", ex.Message);
        Assert.Contains("3 skipped", ex.Message);
        Assert.Throws<ArgumentException>(() => evaluator.Perplexity("none", []));
    }

    [Fact]
    public void Invalid_options_are_rejected_by_name()
    {
        var tok = new CharTokenizer();
        var ex = Assert.Throws<ArgumentException>(() => new ModelEvaluator(TableModel.Random(1), tok, new EvaluationOptions { MaxLength = 8, Stride = 9 }));
        Assert.Contains("Stride", ex.Message);
        Assert.Throws<ArgumentException>(() => new ModelEvaluator(TableModel.Random(1), tok, new EvaluationOptions { BatchSize = 0 }));
    }
}
