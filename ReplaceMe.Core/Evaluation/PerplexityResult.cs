namespace ReplaceMe.Core.Evaluation;

/// <summary>Perplexity of a model on a text corpus.</summary>
/// <param name="Corpus">Name of the corpus.</param>
/// <param name="Perplexity">exp of <paramref name="MeanNll"/>.</param>
/// <param name="MeanNll">Token-weighted mean negative log-likelihood (nats per token).</param>
/// <param name="TokensEvaluated">Number of tokens whose log-probability was scored.</param>
/// <param name="DocumentsEvaluated">Documents that contributed at least one scored token.</param>
/// <param name="DocumentsSkipped">Documents with fewer than two tokens (nothing to predict), or blank.</param>
/// <param name="Windows">Number of model windows run.</param>
public sealed record PerplexityResult(
    string Corpus, double Perplexity, double MeanNll, long TokensEvaluated, int DocumentsEvaluated, int DocumentsSkipped, int Windows)
{
    /// <summary>Name of the corpus.</summary>
    public string Corpus { get; } = Corpus;

    /// <summary>exp of <see cref="MeanNll"/>.</summary>
    public double Perplexity { get; } = Perplexity;

    /// <summary>Token-weighted mean negative log-likelihood (nats per token).</summary>
    public double MeanNll { get; } = MeanNll;

    /// <summary>Number of tokens whose log-probability was scored.</summary>
    public long TokensEvaluated { get; } = TokensEvaluated;

    /// <summary>Documents that contributed at least one scored token.</summary>
    public int DocumentsEvaluated { get; } = DocumentsEvaluated;

    /// <summary>Documents with fewer than two tokens (nothing to predict), or blank.</summary>
    public int DocumentsSkipped { get; } = DocumentsSkipped;

    /// <summary>Number of model windows run.</summary>
    public int Windows { get; } = Windows;



    /// <summary>Standard error of <see cref="MeanNll"/> with documents as the sampling units (cluster-robust ratio
    /// estimator); null when fewer than two sequences were scored (e.g. one concatenated stream).</summary>
    public double? MeanNllStdErr { get; init; }

    /// <summary>Standard error of <see cref="Perplexity"/> by the delta method: perplexity × <see cref="MeanNllStdErr"/>.</summary>
    public double? PerplexityStdErr { get; init; }

    /// <summary>The result as a report row: metric "ppl", lower is better, with its standard error and document count.</summary>
    public TaskScore ToScore() => new(Corpus, "ppl", Perplexity, HigherIsBetter: false, StdErr: PerplexityStdErr, Count: DocumentsEvaluated, Skipped: DocumentsSkipped);
}
