using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>A trivial tokenizer: one id per character, 'a' = 3; BOS 1, EOS 2, PAD 0.</summary>
internal sealed class CharTokenizer : ITextTokenizer
{
    public int VocabSize => 50;
    public int? BosId => 1;
    public int? EosId => 2;
    public int PadId => 0;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) =>
        [.. (addSpecialTokens ? [1] : Array.Empty<int>()), .. text.Select(c => c - 'a' + 3)];

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) =>
        new([.. ids.Where(i => !skipSpecialTokens || i > 2).Select(i => (char)('a' + i - 3))]);
}

public class TextGeneratorTests
{
    private static readonly ModelConfig Config = TinyModels.Llama() with { EosTokenIds = [] };

    private static DecoderModel Model(ScalarType dtype = ScalarType.Float64) => TinyModels.Build(Config, TinyModels.RandomWeights(Config, 41), dtype);

    /// <summary>Greedy decoding the slow way: a full forward over the whole sequence per token, argmax of the last position.</summary>
    private static List<int> NaiveGreedy(DecoderModel model, int[] prompt, int steps)
    {
        var seq = prompt.ToList();
        var result = new List<int>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = TinyModels.Pad([seq.ToArray()], left: false);
            var last = TinyModels.Logits2D(model.Forward(ids, mask), 0);
            int t = seq.Count - 1, best = 0;
            for (int v = 1; v < Config.VocabSize; v++) if (last[t, v] > last[t, best]) best = v;
            seq.Add(best);
            result.Add(best);
        }
        return result;
    }

    [Fact]
    public void Greedy_generation_with_the_cache_equals_full_recomputation()
    {
        using var model = Model();
        var prompt = TinyModels.RandomIds(Config, 5, 1);
        var expected = NaiveGreedy(model, prompt, 8);
        var actual = new TextGenerator(model).Generate([prompt], new GenerationOptions { MaxNewTokens = 8 });
        Assert.Equal(expected, actual[0]);
        Assert.True(expected.Distinct().Count() > 1, "the test needs a non-constant continuation");
    }

    [Fact]
    public void Batched_left_padded_greedy_equals_one_prompt_at_a_time()
    {
        using var model = Model(ScalarType.Float32);
        var generator = new TextGenerator(model);
        int[][] prompts = [TinyModels.RandomIds(Config, 7, 2), TinyModels.RandomIds(Config, 2, 3), TinyModels.RandomIds(Config, 5, 4)];
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var batched = generator.Generate(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(generator.Generate([prompts[i]], options)[0], batched[i]);
    }

    [Fact]
    public void Generation_stops_at_eos_and_streams_every_token()
    {
        using var model = Model();
        var generator = new TextGenerator(model);
        var prompt = TinyModels.RandomIds(Config, 4, 5);
        var free = generator.Generate([prompt], new GenerationOptions { MaxNewTokens = 8 })[0];
        int eos = free[3];
        int firstEos = Array.IndexOf(free, eos);
        var streamed = new List<GeneratedToken>();
        var stopped = generator.Generate([prompt, prompt], new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [eos] }, streamed.Add);
        Assert.Equal(free.Take(firstEos + 1), stopped[0]);
        Assert.Equal(stopped[0], stopped[1]);
        Assert.Equal(stopped[0], streamed.Where(t => t.Row == 0).OrderBy(t => t.Step).Select(t => t.TokenId));
        Assert.Equal(2 * stopped[0].Length, streamed.Count);
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_top_p_near_zero_is_greedy()
    {
        using var model = Model(ScalarType.Float32);
        var generator = new TextGenerator(model);
        var prompt = TinyModels.RandomIds(Config, 4, 6);
        var hot = new GenerationOptions { MaxNewTokens = 12, Temperature = 3.0, Seed = 123 };
        var a = generator.Generate([prompt], hot)[0];
        var b = generator.Generate([prompt], hot)[0];
        var c = generator.Generate([prompt], hot with { Seed = 124 })[0];
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var greedy = generator.Generate([prompt], new GenerationOptions { MaxNewTokens = 12 })[0];
        Assert.NotEqual(greedy, a);
        Assert.Equal(greedy, generator.Generate([prompt], hot with { TopP = 1e-9 })[0]);
    }

    [Fact]
    public void Batch_row_r_samples_like_a_single_prompt_with_seed_plus_r()
    {
        using var model = Model();
        var generator = new TextGenerator(model);
        int[][] prompts = [TinyModels.RandomIds(Config, 5, 7), TinyModels.RandomIds(Config, 3, 8)];
        var hot = new GenerationOptions { MaxNewTokens = 8, Temperature = 2.0, Seed = 40 };
        var batched = generator.Generate(prompts, hot);
        Assert.Equal(generator.Generate([prompts[0]], hot)[0], batched[0]);
        Assert.Equal(generator.Generate([prompts[1]], hot with { Seed = 41 })[0], batched[1]);
    }

    [Fact]
    public void Sampler_draws_follow_the_softmax_and_stay_in_the_nucleus()
    {
        // logits ln(0.5), ln(0.3), ln(0.2): at temperature 1 the draws follow these probabilities.
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f)];
        var sampler = new TokenSampler(1.0, 1.0, seed: 9);
        var counts = new int[3];
        for (int i = 0; i < 20000; i++) counts[sampler.Next(logits)]++;
        Assert.InRange(counts[0] / 20000.0, 0.48, 0.52);
        Assert.InRange(counts[2] / 20000.0, 0.18, 0.22);
        // top-p 0.7 keeps {0, 1} (0.5 + 0.3 ≥ 0.7), renormalized to 5/8 and 3/8.
        var nucleus = new TokenSampler(1.0, 0.7, seed: 9);
        var kept = new int[3];
        for (int i = 0; i < 20000; i++) kept[nucleus.Next(logits)]++;
        Assert.Equal(0, kept[2]);
        Assert.InRange(kept[0] / 20000.0, 0.605, 0.645);
    }

    [Fact]
    public void Text_generation_decodes_prompt_and_continuation()
    {
        using var model = Model();
        var generator = new TextGenerator(model);
        var tokenizer = new CharTokenizer();
        var texts = generator.Generate(tokenizer, ["abc", "hello"], new GenerationOptions { MaxNewTokens = 6 });
        for (int i = 0; i < 2; i++)
        {
            var prompt = tokenizer.Encode(i == 0 ? "abc" : "hello");
            var ids = generator.Generate([prompt], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [2], PadTokenId = 0 })[0];
            Assert.Equal(tokenizer.Decode(prompt.Concat(ids)), texts[i]);
            Assert.StartsWith(i == 0 ? "abc" : "hello", texts[i], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Bad_prompts_and_options_are_rejected()
    {
        using var model = Model(ScalarType.Float32);
        var generator = new TextGenerator(model);
        var ok = new GenerationOptions();
        Assert.Throws<ArgumentException>(() => generator.Generate([], ok));
        Assert.Throws<ArgumentException>(() => generator.Generate([Array.Empty<int>()], ok));
        var ex = Assert.Throws<ArgumentException>(() => generator.Generate([[3, 50]], ok));
        Assert.Contains("50", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => generator.Generate([[3]], ok with { TopP = 0 }));
        Assert.Throws<ArgumentException>(() => generator.Generate([[3]], ok with { Temperature = -1 }));
        Assert.Throws<ArgumentException>(() => generator.Generate([[3]], ok with { MaxNewTokens = -1 }));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => generator.Generate([[3]], ok, cancellationToken: cts.Token));
    }
}
