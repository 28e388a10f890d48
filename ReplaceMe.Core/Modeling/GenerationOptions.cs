namespace ReplaceMe.Core.Modeling;

/// <summary>How <see cref="TextGenerator"/> chooses and stops tokens.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to add to each prompt (default 64).</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Softmax temperature; 0 (the default) means greedy decoding (argmax, lowest id on ties).</summary>
    public double Temperature { get; init; }

    /// <summary>Nucleus sampling: sample among the most likely tokens whose probabilities add up to at least this (default 1: all).</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Seed of the sampler; the same seed, prompts and model give the same tokens. Null draws a seed per call.</summary>
    public int? Seed { get; init; }

    /// <summary>Token ids that end a row; null uses the model config's <c>eos_token_id</c> (and the tokenizer's EOS for text).</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>Id fed for padding; null uses the config's pad id, else the first EOS id, else 0 (padding is masked anyway).</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"MaxNewTokens must be ≥ 0, got {MaxNewTokens}.", nameof(MaxNewTokens));
        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"Temperature must be a finite number ≥ 0, got {Temperature}.", nameof(Temperature));
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must be in (0, 1], got {TopP}.", nameof(TopP));
    }
}

/// <summary>One token produced during generation, for streaming.</summary>
/// <param name="Row">Index of the prompt in the batch.</param>
/// <param name="Step">0-based index of the new token in that row.</param>
/// <param name="TokenId">The token id.</param>
public readonly record struct GeneratedToken(int Row, int Step, int TokenId);
