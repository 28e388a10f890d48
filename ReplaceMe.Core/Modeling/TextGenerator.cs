using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Autoregressive generation with a KV cache on a <see cref="DecoderModel"/>: greedy or temperature/top-p sampling with a
/// seed, a limit on new tokens, stop at EOS, batched prompts (left-padded, so a batch gives the same greedy tokens as
/// one prompt at a time up to float round-off) and an optional per-token callback for streaming.
/// </summary>
public sealed partial class TextGenerator
{
    private readonly DecoderModel _model;
    private readonly ILogger _logger;

    /// <summary>Creates a generator for <paramref name="model"/>.</summary>
    public TextGenerator(DecoderModel model, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchRuntime.EnsureLoaded();
        _model = model;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Continues each prompt. Returns, per prompt, the new token ids only (ending with the EOS id when one was produced).
    /// </summary>
    /// <param name="promptIds">Token ids of each prompt (at least one token each, BOS included if the model wants it).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="onToken">Called for every new token of every unfinished row, in order.</param>
    /// <param name="cancellationToken">Checked before each step.</param>
    /// <exception cref="ArgumentException">No prompts, an empty prompt, an id outside the vocabulary, or an invalid option.</exception>
    public IReadOnlyList<int[]> Generate(
        IReadOnlyList<IReadOnlyList<int>> promptIds, GenerationOptions options,
        Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ValidatePrompts(promptIds);
        var eos = new HashSet<int>(options.EosTokenIds ?? _model.Config.EosTokenIds);
        int padId = options.PadTokenId ?? _model.Config.PadTokenId ?? (eos.Count > 0 ? eos.Min() : 0);
        int rows = promptIds.Count;
#pragma warning disable CA5394 // A fresh seed when the caller gives none; not security related.
        int seed = options.Seed ?? Random.Shared.Next();
#pragma warning restore CA5394
        // Row r draws from its own generator seeded with seed + r (System.Random(int) is stable across processes and
        // runtimes, unlike HashCode), so a row's draws do not depend on how many tokens other rows consumed.
        var samplers = Enumerable.Range(0, rows).Select(r => new TokenSampler(options.Temperature, options.TopP, unchecked(seed + r))).ToArray();
        var generated = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var finished = new bool[rows];
        var stopwatch = Stopwatch.StartNew();

        using var cache = new KvCache();
        using var batch = TokenBatch.FromSequences(promptIds, padId, PaddingSide.Left, _model.Device);
        Tensor ids = batch.InputIds, mask = batch.AttentionMask;
        for (int step = 0; step < options.MaxNewTokens && !finished.All(f => f); step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var logits = _model.ForwardCore(ids, mask, cache, lastPositionOnly: true); // [B, 1, V]
            var next = new long[rows];
            using (var host = logits.squeeze(1).to(ScalarType.Float32, CPU).contiguous())
            {
                var all = host.data<float>().ToArray();
                int vocab = (int)host.shape[1];
                for (int r = 0; r < rows; r++)
                {
                    if (finished[r]) { next[r] = padId; continue; }
                    var row = all.AsSpan(r * vocab, vocab);
                    if (FirstNonFinite(row) is int bad)
                        throw new NonFiniteOutputException(
                            $"Generation step {step} of prompt {r}: the model's logit for token {bad} is {row[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)}; " +
                            $"its weights contain NaN/Inf or the compute dtype {_model.DType} overflowed (try float32).");
                    int token = samplers[r].Next(all.AsSpan(r * vocab, vocab));
                    next[r] = token;
                    generated[r].Add(token);
                    onToken?.Invoke(new GeneratedToken(r, step, token));
                    if (eos.Contains(token)) finished[r] = true;
                }
            }
            if (!ReferenceEquals(ids, batch.InputIds)) { ids.Dispose(); mask.Dispose(); }
            // The next step's input outlives this step's scope: [B, 1] new tokens, all real.
            ids = tensor(next, [rows, 1], ScalarType.Int64, _model.Device).DetachFromDisposeScope();
            mask = ones([rows, 1], ScalarType.Int64, _model.Device).DetachFromDisposeScope();
        }
        if (!ReferenceEquals(ids, batch.InputIds)) { ids.Dispose(); mask.Dispose(); }
        int total = generated.Sum(g => g.Count);
        LogGenerated(_logger, total, rows, stopwatch.ElapsedMilliseconds);
        return generated.Select(g => g.ToArray()).ToArray();
    }

    private static int? FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return null;
    }

    /// <summary>
    /// Tokenizes each prompt (with the tokenizer's special tokens), continues it, and returns the decoded prompt followed by
    /// its continuation (special tokens dropped). EOS ids are the options', else the config's plus the tokenizer's.
    /// </summary>
    /// <exception cref="ArgumentException">No prompts, a prompt that encodes to no tokens, or an invalid option.</exception>
    public IReadOnlyList<string> Generate(
        ITextTokenizer tokenizer, IReadOnlyList<string> prompts, GenerationOptions options,
        Action<GeneratedToken>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        var encoded = prompts.Select(p => tokenizer.Encode(p ?? throw new ArgumentException("A prompt is null.", nameof(prompts)))).ToList();
        var eos = options.EosTokenIds ?? [.. _model.Config.EosTokenIds.Concat(tokenizer.EosId is int e ? [e] : []).Distinct()];
        var effective = options with { EosTokenIds = eos, PadTokenId = options.PadTokenId ?? tokenizer.PadId };
        var continuations = Generate(encoded, effective, onToken, cancellationToken);
        return encoded.Select((p, i) => tokenizer.Decode(p.Concat(continuations[i]), skipSpecialTokens: true)).ToArray();
    }

    private void ValidatePrompts(IReadOnlyList<IReadOnlyList<int>> promptIds)
    {
        if (promptIds.Count == 0) throw new ArgumentException("At least one prompt is needed.", nameof(promptIds));
        int vocab = _model.Config.VocabSize;
        for (int r = 0; r < promptIds.Count; r++)
        {
            var prompt = promptIds[r] ?? throw new ArgumentException($"Prompt {r} is null.", nameof(promptIds));
            if (prompt.Count == 0) throw new ArgumentException($"Prompt {r} has no tokens.", nameof(promptIds));
            foreach (var id in prompt)
                if (id < 0 || id >= vocab)
                    throw new ArgumentException($"Prompt {r} contains token id {id}, outside the vocabulary [0, {vocab}).", nameof(promptIds));
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Generated {Tokens} tokens for {Rows} prompts in {Milliseconds} ms")]
    private static partial void LogGenerated(ILogger logger, int tokens, int rows, long milliseconds);
}
