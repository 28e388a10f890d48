using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>How a text corpus is cut into scored sequences for perplexity.</summary>
public enum DocumentMode
{
    /// <summary>Each document is its own sequence (with BOS when <see cref="EvaluationOptions.AddBos"/>); windows never cross documents.</summary>
    Separate,
    /// <summary>All documents form one token stream, joined by the EOS token; windows run across document boundaries.</summary>
    Concatenated,
}

/// <summary>
/// Settings shared by every evaluation of <see cref="ModelEvaluator"/>. The defaults follow lm-evaluation-harness
/// (seed 1234, few-shot separator "\n\n") and Hugging Face's sliding-window perplexity recipe.
/// </summary>
public sealed record EvaluationOptions
{
    /// <summary>Sequences per forward pass. Results do not depend on it.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Longest token sequence given to the model. Perplexity windows have this length; longer task prompts lose
    /// tokens from the left, as in the harness.
    /// </summary>
    public int MaxLength { get; init; } = 1024;

    /// <summary>Perplexity window stride in tokens (null: <see cref="MaxLength"/>, i.e. non-overlapping windows).
    /// Each window scores only the tokens no earlier window scored.</summary>
    public int? Stride { get; init; }

    /// <summary>Whether perplexity documents are scored one by one or as one EOS-joined stream.</summary>
    public DocumentMode DocumentMode { get; init; } = DocumentMode.Separate;

    /// <summary>
    /// Encode with the tokenizer's special tokens (BOS for Llama-family models) at the start of every sequence.
    /// The harness's Hugging Face backend omits BOS by default; Llama models are trained with it, so it is on here.
    /// </summary>
    public bool AddBos { get; init; } = true;

    /// <summary>Side padding goes on inside a batch. Results do not depend on it.</summary>
    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;

    /// <summary>Number of solved examples put before each multiple-choice item (0 = zero-shot).</summary>
    public int Shots { get; init; }

    /// <summary>Seed of the few-shot example choice (each item draws its examples from this seed and its index).</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>Text between few-shot examples and before the evaluated item.</summary>
    public string FewShotSeparator { get; init; } = "\n\n";

    /// <summary>Evaluate only the first N items of each task (null: all).</summary>
    public int? Limit { get; init; }

    /// <summary>
    /// RAM for the hidden states of the evaluation batches between two blocks when a
    /// <see cref="Modeling.StreamedDecoderModel"/> is evaluated block-major (docs/streaming.md); beyond it they spill to
    /// <see cref="SpillDirectory"/> (float32, exact). Default 1 GiB. Unused for a model in memory.
    /// </summary>
    public long HiddenStateBudgetBytes { get; init; } = 1L << 30;

    /// <summary>Folder of the spill file of a streamed model's block-major evaluation (unlinked at once; nothing stays
    /// behind); null uses the system's temporary folder. Its free space is checked before the pass.</summary>
    public string? SpillDirectory { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1 (got {BatchSize}).", nameof(BatchSize));
        if (MaxLength < 2) throw new ArgumentException($"MaxLength must be at least 2 tokens (got {MaxLength}).", nameof(MaxLength));
        if (Stride is { } s && (s < 1 || s > MaxLength))
            throw new ArgumentException($"Stride must be in [1, MaxLength={MaxLength}] (got {s}).", nameof(Stride));
        if (Shots < 0) throw new ArgumentException($"Shots must be 0 or more (got {Shots}).", nameof(Shots));
        if (Limit is { } l && l < 1) throw new ArgumentException($"Limit must be at least 1 (got {l}).", nameof(Limit));
        if (HiddenStateBudgetBytes < 0)
            throw new ArgumentException($"HiddenStateBudgetBytes must be 0 or more (got {HiddenStateBudgetBytes}).", nameof(HiddenStateBudgetBytes));
        ArgumentNullException.ThrowIfNull(FewShotSeparator);
    }
}
