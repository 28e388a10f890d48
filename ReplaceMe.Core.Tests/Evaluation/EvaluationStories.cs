using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>30 stories stories15M writes itself (seeded temperature-0.8 sampling, distinct openings): held-out domain text, sampled by the tests' own sampler.</summary>
internal static class EvaluationStories
{
    private static readonly string[] Names = ["Lily", "Tom", "Sue", "Ben", "Mia", "Max"];
    private static readonly string[] Openings =
    [
        "Once upon a time, there was a little girl named {0}.",
        "One day, a boy named {0} went to the park.",
        "{0} had a big red ball.",
        "There was a small dog named {0}.",
        "{0} liked to help her mom in the kitchen.",
    ];

    /// <summary>One story per (name, opening): 96 new tokens at temperature 0.8, seed 2024.</summary>
    public static IReadOnlyList<string> Sample(DecoderModel model, ITextTokenizer tokenizer)
    {
        var prompts = Names.SelectMany(n => Openings.Select(o => string.Format(System.Globalization.CultureInfo.InvariantCulture, o, n))).ToArray();
        return SampleStories(model, tokenizer, prompts, newTokens: 96, temperature: 0.8, seed: 2024);
    }

    /// <summary>Temperature sampling with one seeded <see cref="Random"/> (reproducible), batched with a KV cache; stops at BOS or EOS.</summary>
    private static string[] SampleStories(DecoderModel model, ITextTokenizer tok, string[] prompts, int newTokens, double temperature, int seed)
    {
        var rng = new Random(seed);
        var encoded = prompts.Select(p => tok.Encode(p)).ToList();
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        var done = new bool[prompts.Length];
        using var noGrad = TorchSharp.torch.no_grad();
        using var cache = new KvCache();
        using var batch = TokenBatch.FromSequences(encoded, tok.PadId, PaddingSide.Left);
        var ids = batch.InputIds;
        var mask = batch.AttentionMask;
        for (int step = 0; step < newTokens && !done.All(d => d); step++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var logits = model.ForwardCore(ids, mask, cache, lastPositionOnly: true).squeeze(1).cpu(); // [B, V]
            var all = logits.data<float>().ToArray();
            int vocab = (int)logits.shape[1];
            var next = new long[prompts.Length];
            for (int r = 0; r < prompts.Length; r++)
            {
                next[r] = 2;
                if (done[r]) continue;
                var row = all.AsSpan(r * vocab, vocab);
                float max = float.NegativeInfinity;
                foreach (var v in row) max = Math.Max(max, v);
                var weights = new double[vocab];
                double total = 0;
                for (int j = 0; j < vocab; j++) total += weights[j] = Math.Exp((row[j] - max) / temperature);
                double u = rng.NextDouble() * total;
                int pick = 0;
                for (double acc = weights[0]; acc < u && pick < vocab - 1; acc += weights[++pick]) { }
                if (pick is 1 or 2) done[r] = true;
                else generated[r].Add(pick);
                next[r] = pick;
            }
            if (!ReferenceEquals(ids, batch.InputIds)) { ids.Dispose(); mask.Dispose(); }
            ids = TorchSharp.torch.tensor(next, [prompts.Length, 1]).DetachFromDisposeScope();
            mask = TorchSharp.torch.ones([prompts.Length, 1], TorchSharp.torch.ScalarType.Int64).DetachFromDisposeScope();
        }
        return encoded.Select((p, i) => tok.Decode(p.Concat(generated[i])).Trim()).ToArray();
    }
}
