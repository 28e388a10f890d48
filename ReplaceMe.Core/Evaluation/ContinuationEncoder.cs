using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Tokenizes a (context, continuation) pair the way lm-evaluation-harness does: trailing whitespace of the context
/// moves to the front of the continuation; the whole text is encoded once and the continuation is what follows the
/// context's own token count, so a word that starts the continuation is tokenized as it is in running text.
/// </summary>
internal static class ContinuationEncoder
{
    public static (IReadOnlyList<int> Context, IReadOnlyList<int> Continuation) Encode(ITextTokenizer tokenizer, string context, string continuation, bool addBos)
    {
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }

        IReadOnlyList<int> contextIds, whole;
        if (context.Length == 0)
        {
            // Nothing to condition on: start from BOS (or EOS when BOS is off or absent), like the harness's EOT context.
            int start = (addBos ? tokenizer.BosId : null) ?? tokenizer.EosId ?? tokenizer.BosId
                ?? throw new ArgumentException("An empty context needs a BOS or EOS token to condition on.", nameof(context));
            contextIds = [start];
            whole = [start, .. tokenizer.Encode(continuation, addSpecialTokens: false)];
        }
        else
        {
            contextIds = tokenizer.Encode(context, addBos);
            whole = tokenizer.Encode(context + continuation, addBos);
        }

        var continuationIds = whole.Skip(contextIds.Count).ToArray();
        if (continuationIds.Length == 0)
        {
            // The joint encoding merged the continuation into the context's tokens: score its own encoding instead.
            continuationIds = [.. tokenizer.Encode(continuation, addSpecialTokens: false)];
            if (continuationIds.Length == 0)
                throw new ArgumentException($"The continuation '{continuation}' encodes to no tokens.", nameof(continuation));
        }
        return (contextIds, continuationIds);
    }

    /// <summary>A scoring row for the pair: the last <paramref name="maxLength"/> tokens of context + continuation, scoring the continuation.</summary>
    public static ScoreRow Row(IReadOnlyList<int> context, IReadOnlyList<int> continuation, int maxLength)
    {
        var all = new int[context.Count + continuation.Count];
        for (int i = 0; i < context.Count; i++) all[i] = context[i];
        for (int i = 0; i < continuation.Count; i++) all[context.Count + i] = continuation[i];
        int drop = Math.Max(0, all.Length - maxLength);
        var kept = drop == 0 ? all : all[drop..];
        return new ScoreRow(kept, Math.Max(1, kept.Length - continuation.Count));
    }
}
