using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Evaluates any <see cref="ITransformerAdapter"/> with its tokenizer: perplexity on text, multiple-choice
/// log-likelihood tasks (acc, acc_norm) and last-word cloze tasks, in batches on the model's device, without gradients.
/// A <see cref="StreamedDecoderModel"/> is evaluated block-major with a chunk-major LM head, so each block and each head
/// chunk is read once per corpus or task (<see cref="EvaluationOptions.HiddenStateBudgetBytes"/>, docs/streaming.md).
/// </summary>
public sealed partial class ModelEvaluator
{
    private readonly ITransformerAdapter _model;
    private readonly ITextTokenizer _tokenizer;
    private readonly ILogger _logger;

    /// <summary>Creates an evaluator.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public ModelEvaluator(ITransformerAdapter model, ITextTokenizer tokenizer, EvaluationOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        TorchRuntime.EnsureLoaded(logger);
        Options = options ?? new EvaluationOptions();
        Options.Validate();
        _model = model;
        _tokenizer = tokenizer;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The settings in use.</summary>
    public EvaluationOptions Options { get; }

    /// <summary>Perplexity of the model on <paramref name="documents"/> (sliding windows, token-weighted mean NLL).</summary>
    /// <exception cref="ArgumentException">No documents, or none with two or more tokens.</exception>
    public PerplexityResult Perplexity(string corpus, IReadOnlyList<string> documents, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var result = PerplexityComputation.Run(_model, _tokenizer, corpus, documents, Options, progress, cancellationToken);
        LogPerplexity(_logger, corpus, result.Perplexity, result.TokensEvaluated, result.DocumentsSkipped);
        return result;
    }

    /// <summary>acc and acc_norm of the model on a multiple-choice task (k-shot per <see cref="EvaluationOptions.Shots"/>).</summary>
    /// <exception cref="ArgumentException">The task has no items, or too few few-shot examples.</exception>
    public MultipleChoiceResult MultipleChoice(MultipleChoiceTask task, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var result = MultipleChoiceScoring.Run(_model, _tokenizer, task, Options, progress, cancellationToken);
        LogChoice(_logger, result.Task, result.Accuracy, result.NormalizedAccuracy, result.Count);
        return result;
    }

    /// <summary>Last-word accuracy and target-word perplexity on a cloze task.</summary>
    /// <exception cref="ArgumentException">The task has no items.</exception>
    public ClozeResult Cloze(ClozeTask task, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var result = ClozeScoring.Run(_model, _tokenizer, task, Options, progress, cancellationToken);
        LogCloze(_logger, result.Task, result.Accuracy, result.Perplexity, result.Count);
        return result;
    }

    /// <summary>Runs every part of <paramref name="suite"/> and returns the report rows under <paramref name="modelName"/>.</summary>
    public ModelScores Evaluate(string modelName, EvaluationSuite suite, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var scores = new List<TaskScore>();
        foreach (var corpus in suite.Corpora) scores.Add(Perplexity(corpus.Name, corpus.Documents, progress, cancellationToken).ToScore());
        foreach (var task in suite.ClozeTasks) scores.AddRange(Cloze(task, progress, cancellationToken).ToScores());
        foreach (var task in suite.MultipleChoiceTasks) scores.Add(MultipleChoice(task, progress, cancellationToken).ToScore());
        return new ModelScores(modelName, scores);
    }

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "{Corpus}: perplexity {Perplexity:F3} over {Tokens} tokens ({Skipped} documents skipped)")]
    private static partial void LogPerplexity(ILogger logger, string corpus, double perplexity, long tokens, int skipped);

    [LoggerMessage(EventId = 502, Level = LogLevel.Information, Message = "{Task}: acc {Acc:F4}, acc_norm {AccNorm:F4} over {Count} items")]
    private static partial void LogChoice(ILogger logger, string task, double acc, double accNorm, int count);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "{Task}: last-word acc {Acc:F4}, target ppl {Perplexity:F3} over {Count} items")]
    private static partial void LogCloze(ILogger logger, string task, double acc, double perplexity, int count);
}
