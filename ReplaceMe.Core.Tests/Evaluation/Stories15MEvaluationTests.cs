using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>The evaluator on stories15M and 30 stories it wrote itself (both shared by the whole test run).</summary>
public class Stories15MEvaluationTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Perplexity_on_its_own_stories_is_below_3_and_does_not_depend_on_batching()
    {
        Assert.Equal(30, Fixture.Stories.Count);
        var right = new ModelEvaluator(Fixture.Model, Fixture.Tokenizer, new EvaluationOptions { MaxLength = 256, Stride = 128, BatchSize = 8 })
            .Perplexity("stories", Fixture.Stories);
        var left = new ModelEvaluator(Fixture.Model, Fixture.Tokenizer, new EvaluationOptions { MaxLength = 256, Stride = 128, BatchSize = 3, PaddingSide = PaddingSide.Left })
            .Perplexity("stories", Fixture.Stories);
        Assert.InRange(right.Perplexity, 1.0, 3.0);
        Assert.True(right.TokensEvaluated > 30 * 40, $"only {right.TokensEvaluated} tokens");
        Assert.Equal(right.TokensEvaluated, left.TokensEvaluated);
        Assert.Equal(right.MeanNll, left.MeanNll, 4);
    }

    [Fact]
    public void Last_word_accuracy_on_its_own_stories_is_far_above_chance()
    {
        var task = ClozeTask.FromDocuments("stories-lastword", Fixture.Stories);
        Assert.True(task.Items.Count >= 25, $"{task.Items.Count} items");
        var result = new ModelEvaluator(Fixture.Model, Fixture.Tokenizer, new EvaluationOptions { MaxLength = 256 }).Cloze(task);
        // Chance is about 1 / 32000 per token.
        Assert.True(result.Accuracy > 0.4, $"accuracy {result.Accuracy}");
        Assert.InRange(result.Perplexity, 1.0, 20.0);
    }
}
