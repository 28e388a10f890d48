using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>stories15M imported once, plus 30 stories it wrote itself (seeded temperature-0.8 sampling, distinct openings): held-out domain text.</summary>
public sealed class Stories15MFixture : IDisposable
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

    private readonly TempDir _dir = TestPaths.NewTempDir();

    public Stories15MFixture()
    {
        ModelDir = _dir.Combine("stories15M");
        Llama2cImporter.Import(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"), Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"), ModelDir);
        Tokenizer = TokenizerLoader.Load(ModelDir);
        Model = DecoderModel.FromPretrained(ModelDir);
        var prompts = Names.SelectMany(n => Openings.Select(o => string.Format(System.Globalization.CultureInfo.InvariantCulture, o, n))).ToArray();
        Stories = SampleStories(Model, Tokenizer, prompts, newTokens: 96, temperature: 0.8, seed: 2024);
        StoriesFile = _dir.Combine("stories.txt");
        File.WriteAllText(StoriesFile, string.Join("\n\n", Stories) + "\n");
    }

    public string ModelDir { get; }
    public ITextTokenizer Tokenizer { get; }
    public DecoderModel Model { get; }
    public IReadOnlyList<string> Stories { get; }
    public string StoriesFile { get; }

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

    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class Stories15MCollection : ICollectionFixture<Stories15MFixture>
{
    public const string Name = "stories15M evaluation";
}

[Collection(Stories15MCollection.Name)]
public class Stories15MEvaluationTests(Stories15MFixture fixture)
{
    [Fact]
    public void Perplexity_on_its_own_stories_is_below_3_and_does_not_depend_on_batching()
    {
        Assert.Equal(30, fixture.Stories.Count);
        var right = new ModelEvaluator(fixture.Model, fixture.Tokenizer, new EvaluationOptions { MaxLength = 256, Stride = 128, BatchSize = 8 })
            .Perplexity("stories", fixture.Stories);
        var left = new ModelEvaluator(fixture.Model, fixture.Tokenizer, new EvaluationOptions { MaxLength = 256, Stride = 128, BatchSize = 3, PaddingSide = PaddingSide.Left })
            .Perplexity("stories", fixture.Stories);
        Assert.InRange(right.Perplexity, 1.0, 3.0);
        Assert.True(right.TokensEvaluated > 30 * 40, $"only {right.TokensEvaluated} tokens");
        Assert.Equal(right.TokensEvaluated, left.TokensEvaluated);
        Assert.Equal(right.MeanNll, left.MeanNll, 4);
    }

    [Fact]
    public void Last_word_accuracy_on_its_own_stories_is_far_above_chance()
    {
        var task = ClozeTask.FromDocuments("stories-lastword", fixture.Stories);
        Assert.True(task.Items.Count >= 25, $"{task.Items.Count} items");
        var result = new ModelEvaluator(fixture.Model, fixture.Tokenizer, new EvaluationOptions { MaxLength = 256 }).Cloze(task);
        // Chance is about 1 / 32000 per token.
        Assert.True(result.Accuracy > 0.4, $"accuracy {result.Accuracy}");
        Assert.InRange(result.Perplexity, 1.0, 20.0);
    }
}
