using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

public class MultipleChoiceTests
{
    private static MultipleChoiceTask GenericTask() => new("toy",
    [
        MultipleChoiceItem.Create("Pick:", ["qq", "b"], 0),
        MultipleChoiceItem.Create("Pick:", ["qqqqqqxx", "x"], 1),
        MultipleChoiceItem.Create("Pick:", ["ab", "q"], 0),
    ]);

    [Fact]
    public void Acc_and_acc_norm_follow_the_controlled_scores()
    {
        // LovesQ: " qq" beats " b" on both; " qqqqqqxx" loses on the sum but wins per character; " q" beats " ab" on both.
        var result = new ModelEvaluator(TableModel.LovesQ(), new CharTokenizer()).MultipleChoice(GenericTask());
        Assert.Equal(2.0 / 3, result.Accuracy, 12);
        Assert.Equal(1.0 / 3, result.NormalizedAccuracy, 12);
        Assert.Equal(1.0 / 3, result.AccuracyStdErr, 12); // sqrt(p(1-p) n/(n-1) / n) with p = 2/3, n = 3
        Assert.Equal([0, 1, 1], result.Outcomes.Select(o => o.Predicted));
        Assert.Equal([0, 0, 1], result.Outcomes.Select(o => o.PredictedNormalized));
        Assert.Equal("acc", result.ToScore().Metric);
    }

    [Fact]
    public void Log_likelihoods_equal_the_hand_computed_sums_for_any_batch_and_padding()
    {
        var model = TableModel.Random(seed: 21);
        var task = GenericTask();
        foreach (var (batch, side) in new[] { (1, PaddingSide.Right), (4, PaddingSide.Left), (32, PaddingSide.Right) })
        {
            var result = new ModelEvaluator(model, new CharTokenizer(), new EvaluationOptions { BatchSize = batch, PaddingSide = side }).MultipleChoice(task);
            for (int i = 0; i < task.Items.Count; i++)
                for (int c = 0; c < 2; c++)
                    Assert.Equal(TaskReference.LogLikelihood(model, task.Items[i].Contexts[c], task.Items[i].Continuations[c]), result.Outcomes[i].LogLikelihoods[c], 4);
        }
    }

    [Fact]
    public void Long_prompts_lose_tokens_from_the_left()
    {
        var model = TableModel.Random(seed: 2, positions: 40);
        var item = MultipleChoiceItem.Create(new string('z', 30) + "Pick:", ["abc", "de"], 0);
        var result = new ModelEvaluator(model, new CharTokenizer(), new EvaluationOptions { MaxLength = 6 }).MultipleChoice(new MultipleChoiceTask("t", [item, item]));
        // Last 6 tokens "k: abc" (position 0 = 'k'): only the continuation's 4 tokens are scored, at positions 2..5.
        var ids = new CharTokenizer().Encode("k: abc", addSpecialTokens: false);
        double expected = 0;
        for (int t = 2; t < 6; t++) expected += model.LogProb(ids[t - 1], t - 1, ids[t]);
        Assert.Equal(expected, result.Outcomes[0].LogLikelihoods[0], 4);
    }

    [Fact]
    public void Continuation_split_follows_the_harness()
    {
        var tok = new MergingTokenizer();
        // Trailing space moves to the continuation: context "x", continuation " yes".
        var (ctx, cont) = ContinuationEncoder.Encode(tok, "x ", "yes", addBos: true);
        Assert.Equal(tok.Encode("x"), ctx);
        Assert.Equal(tok.Encode("x yes").Skip(ctx.Count), cont);
        // "xa" + "b" encodes as [BOS, x, ab]: the whole is no longer than the context, so the continuation is encoded alone.
        (ctx, cont) = ContinuationEncoder.Encode(tok, "xa", "b", addBos: true);
        Assert.Equal([1, 'x', 'a'], ctx);
        Assert.Equal(['b'], cont);
        // "xa" + "bc": whole [BOS, x, ab, c]; the continuation is what follows the context's three tokens.
        (_, cont) = ContinuationEncoder.Encode(tok, "xa", "bc", addBos: true);
        Assert.Equal(['c'], cont);
        // Empty context: condition on BOS.
        (ctx, cont) = ContinuationEncoder.Encode(tok, "", "ab", addBos: true);
        Assert.Equal([1], ctx);
        Assert.Equal([MergingTokenizer.AB], cont);
    }

    [Fact]
    public void Few_shot_prefixes_are_seeded_exclude_the_item_and_use_the_separator()
    {
        var items = Enumerable.Range(0, 6).Select(i => MultipleChoiceItem.Create($"C{i}:", [$"right{i}", $"wrong{i}"], 0)).ToArray();
        var task = new MultipleChoiceTask("t", items);
        var options = new EvaluationOptions { Shots = 3, Seed = 5 };
        for (int i = 0; i < items.Length; i++)
        {
            var prefix = FewShot.Prefix(task, i, options);
            Assert.Equal(prefix, FewShot.Prefix(task, i, options));
            var examples = prefix.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, examples.Length);
            Assert.EndsWith("\n\n", prefix);
            Assert.DoesNotContain($"C{i}: right{i}", examples);
            Assert.All(examples, e => Assert.Matches(@"^C(\d): right\1$", e));
            Assert.Equal(3, examples.Distinct().Count());
        }
        Assert.NotEqual(FewShot.Prefix(task, 0, options), FewShot.Prefix(task, 0, options with { Seed = 6 }));

        var fewShotSplit = new[] { MultipleChoiceItem.Create("S:", ["yes", "no"], 1) };
        Assert.Equal("S: no\n\n", FewShot.Prefix(task with { FewShotItems = fewShotSplit }, 0, options with { Shots = 1 }));
        var ex = Assert.Throws<ArgumentException>(() => FewShot.Prefix(task with { FewShotItems = fewShotSplit }, 0, options));
        Assert.Contains("only 1", ex.Message);
    }

    [Fact]
    public void Few_shot_evaluation_scores_the_item_after_its_examples()
    {
        var model = TableModel.Random(seed: 9, positions: 64);
        var task = GenericTask();
        var options = new EvaluationOptions { Shots = 2 };
        var result = new ModelEvaluator(model, new CharTokenizer(), options).MultipleChoice(task);
        var prefix = FewShot.Prefix(task, 1, options);
        Assert.Equal(TaskReference.LogLikelihood(model, prefix + "Pick:", " x"), result.Outcomes[1].LogLikelihoods[1], 4);
    }

    [Fact]
    public void Items_reject_bad_labels_and_too_few_choices()
    {
        Assert.Throws<ArgumentException>(() => MultipleChoiceItem.Create("c", ["a", "b"], 2));
        Assert.Throws<ArgumentException>(() => MultipleChoiceItem.Create("c", ["a"], 0));
        Assert.Throws<ArgumentException>(() => MultipleChoiceItem.Partial(["a", "b"], "", 0));
        Assert.Throws<ArgumentException>(() => new ModelEvaluator(TableModel.LovesQ(), new CharTokenizer()).MultipleChoice(new MultipleChoiceTask("empty", [])));
    }

    /// <summary>Characters as ids (BOS 1), except that "ab" is one token.</summary>
    private sealed class MergingTokenizer : ITextTokenizer
    {
        public const int AB = 1000;
        public int VocabSize => 1001;
        public int? BosId => 1;
        public int? EosId => 2;
        public int PadId => 0;

        public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
        {
            var ids = new List<int>();
            if (addSpecialTokens) ids.Add(1);
            for (int i = 0; i < text.Length; i++)
            {
                if (text[i] == 'a' && i + 1 < text.Length && text[i + 1] == 'b') { ids.Add(AB); i++; }
                else ids.Add(text[i]);
            }
            return ids;
        }

        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => string.Concat(ids.Select(i => i == AB ? "ab" : ((char)i).ToString()));
    }
}
