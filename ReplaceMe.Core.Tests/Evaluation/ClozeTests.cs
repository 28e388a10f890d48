using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

public class ClozeTests
{
    [Fact]
    public void The_last_word_is_the_target_without_trailing_punctuation()
    {
        var task = ClozeTask.FromDocuments("stories",
        [
            "Lily went to the park with her mom and they were very happy.",
            "Tom said to his friend that he would always be there for him, \"forever\"!",
            "Too short to use.",
            "The dog ran and ran and ran all day until it was the mother-in-law's",
            "...!!!",
        ]);
        Assert.Equal(new ClozeItem("Lily went to the park with her mom and they were very", " happy"), task.Items[0]);
        Assert.Equal(new ClozeItem("Tom said to his friend that he would always be there for him, \"", "forever"), task.Items[1]);
        Assert.Equal(new ClozeItem("The dog ran and ran and ran all day until it was the", " mother-in-law's"), task.Items[2]);
        Assert.Equal(3, task.Items.Count);
        Assert.Equal(2, task.SkippedItems);
    }

    [Fact]
    public void Accuracy_is_greedy_exact_match_of_every_target_token()
    {
        var task = new ClozeTask("toy", [new ClozeItem("aq", " q"), new ClozeItem("aq", " qq"), new ClozeItem("aa", "q q"), new ClozeItem("b", "x")]);
        var model = TableModel.LovesQ();
        var result = new ModelEvaluator(model, new CharTokenizer(), new EvaluationOptions { BatchSize = 3 }).Cloze(task);
        Assert.Equal(0.5, result.Accuracy, 12); // items 1 and 3 hit; " qq" needs q after q, "x" is never the argmax
        Assert.Equal(Math.Sqrt(0.25 * 4 / 3 / 4), result.AccuracyStdErr, 12);
        Assert.Equal(2 + 3 + 3 + 1, result.TargetTokens);
        double meanLl = task.Items.Average(i => TaskReference.LogLikelihood(model, i.Context, i.Target));
        Assert.Equal(-meanLl, Math.Log(result.Perplexity), 4);
        var scores = result.ToScores();
        Assert.Equal(["acc", "ppl"], scores.Select(s => s.Metric));
        Assert.False(scores[1].HigherIsBetter);

        // The perplexity's standard error: perplexity × the standard error of the per-item log-likelihoods.
        var lls = task.Items.Select(i => TaskReference.LogLikelihood(model, i.Context, i.Target)).ToArray();
        double sd = Math.Sqrt(lls.Sum(v => (v - meanLl) * (v - meanLl)) / (lls.Length - 1));
        Assert.Equal(result.Perplexity * sd / Math.Sqrt(lls.Length), result.PerplexityStdErr!.Value, 4);
        Assert.Equal(result.PerplexityStdErr, scores[1].StdErr);
        Assert.All(scores, s => Assert.Equal(4, s.Count));
    }

    [Fact]
    public void Text_files_split_into_documents_at_blank_lines()
    {
        using var dir = TestPaths.NewTempDir();
        var path = TaskReference.Write(dir, "t.txt", "First line", "second line", "", "", "Third", "   ", "Fourth\r");
        Assert.Equal(["First line\nsecond line", "Third", "Fourth"], TaskLoader.ReadDocuments(path));
    }
}
