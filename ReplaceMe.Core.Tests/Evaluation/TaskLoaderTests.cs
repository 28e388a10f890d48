using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>Each loader on a hand-written 3-record file in the published format: exact prompts, continuations, and accuracies on a controlled model.</summary>
public class TaskLoaderTests
{
    private static MultipleChoiceTask Load(string format, params string[] lines)
    {
        using var dir = TestPaths.NewTempDir();
        return TaskLoader.LoadMultipleChoice(format, TaskReference.Write(dir, format + ".jsonl", lines));
    }

    /// <summary>Runs the task on the q-loving model and checks acc/acc_norm against the hand-scored reference; returns the result.</summary>
    private static MultipleChoiceResult AssertAccuracies(MultipleChoiceTask task, double? expectedAcc = null, double? expectedAccNorm = null)
    {
        var model = TableModel.LovesQ();
        var result = new ModelEvaluator(model, new CharTokenizer(), new EvaluationOptions { BatchSize = 4 }).MultipleChoice(task);
        var (acc, accNorm) = TaskReference.Accuracies(model, task.Items);
        Assert.Equal(acc, result.Accuracy, 12);
        Assert.Equal(accNorm, result.NormalizedAccuracy, 12);
        if (expectedAcc is { } a) Assert.Equal(a, result.Accuracy, 12);
        if (expectedAccNorm is { } n) Assert.Equal(n, result.NormalizedAccuracy, 12);
        return result;
    }

    [Fact]
    public void HellaSwag_preprocesses_like_the_harness_and_skips_unlabelled_records()
    {
        var task = Load("hellaswag",
            """{"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow.", "ctx_b": "the MAN", "endings": [", qqq qqq.", ", the man adds wax.", ", b.", ", c d e f g."], "source_id": "activitynet~v", "split": "train", "split_type": "indomain", "label": 0}""",
            """{"ind": 5, "activity_label": "Home and Garden", "ctx_a": "[header] How to clean a grill [title] Heat the grill.", "ctx_b": "", "endings": ["[step] Scrub  the grates.", "Wash it [substeps] now.", "qqqq", "Leave it."], "label": "2"}""",
            """{"ind": 6, "activity_label": "Test", "ctx_a": "A man.", "ctx_b": "he", "endings": ["a", "b", "c", "d"], "label": ""}""");
        Assert.Equal(2, task.Items.Count);
        Assert.Equal(1, task.SkippedItems);
        Assert.Equal("Removing ice from car: Then, the man writes over the snow. The man", task.Items[0].Contexts[0]);
        Assert.Equal(" , the man adds wax.", task.Items[0].Continuations[1]);
        Assert.Equal("Home and Garden: How to clean a grill. Heat the grill.", task.Items[1].Contexts[0]);
        Assert.Equal(["  Scrub the grates.", " Wash it now.", " qqqq", " Leave it."], task.Items[1].Continuations);
        Assert.Equal(2, task.Items[1].Label);
        Assert.Equal(ChoiceMetric.NormalizedAccuracy, task.PrimaryMetric);
        var result = AssertAccuracies(task, 1.0, 1.0);
        Assert.Equal(1, result.Skipped);
    }

    [Fact]
    public void Piqa_uses_question_answer_prompt()
    {
        var task = Load("piqa",
            """{"goal": "How do I dry my hands?", "sol1": "Use a towel.", "sol2": "Use qqqq.", "label": 1}""",
            """{"goal": "Open a jar", "sol1": "qq", "sol2": "Twist the lid off.", "label": 1}""",
            """{"goal": "Cool tea", "sol1": "Wait.", "sol2": "Boil it.", "label": 0}""");
        Assert.Equal("Question: How do I dry my hands?\nAnswer:", task.Items[0].Contexts[0]);
        Assert.Equal([" Use a towel.", " Use qqqq."], task.Items[0].Continuations);
        // Item 3: " Wait." has the higher sum, " Boil it." the higher per-character score.
        AssertAccuracies(task, 2.0 / 3, 1.0 / 3);
    }

    [Fact]
    public void BoolQ_reads_SuperGLUE_labels_and_Google_answers()
    {
        var task = Load("boolq",
            """{"question": "is the sky blue", "passage": "The sky is blue.", "idx": 0, "label": 1}""",
            """{"question": "do fish fly", "passage": "Fish swim.", "idx": 1, "label": 0}""",
            """{"question": "is water wet", "title": "Water", "answer": true, "passage": "Water is wet."}""");
        Assert.Equal("The sky is blue.\nQuestion: is the sky blue?\nAnswer:", task.Items[0].Contexts[0]);
        Assert.Equal([" no", " yes"], task.Items[0].Continuations);
        Assert.Equal([1, 0, 1], task.Items.Select(i => i.Label));
        AssertAccuracies(task);
    }

    [Fact]
    public void Arc_reads_the_Hugging_Face_and_the_original_layouts_with_letter_or_digit_keys()
    {
        var task = Load("arc_challenge",
            """{"id": "Mercury_1", "question": "Which is a gas?", "choices": {"text": ["ice", "steam", "wood", "qq"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"}""",
            """{"id": "NYSED_2", "question": "Pick four.", "choices": {"text": ["one", "two", "three", "four"], "label": ["1", "2", "3", "4"]}, "answerKey": "4"}""",
            """{"id": "ARC_3", "question": {"stem": "Which is qq?", "choices": [{"text": "qq", "label": "A"}, {"text": "rr", "label": "B"}]}, "answerKey": "A"}""");
        Assert.Equal("Question: Which is a gas?\nAnswer:", task.Items[0].Contexts[0]);
        Assert.Equal([" ice", " steam", " wood", " qq"], task.Items[0].Continuations);
        Assert.Equal([1, 3, 0], task.Items.Select(i => i.Label));
        Assert.Equal("Question: Which is qq?\nAnswer:", task.Items[2].Contexts[1]);
        Assert.Equal("arc_challenge", task.Name);
        AssertAccuracies(task, 1.0 / 3, 1.0 / 3);
    }

    [Fact]
    public void OpenBookQA_uses_the_bare_question_stem()
    {
        var task = Load("openbookqa",
            """{"id": "7-980", "question_stem": "The sun is responsible for", "choices": {"text": ["puppies learning new tricks", "plants sprouting", "qq", "x"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"}""",
            """{"id": "7-981", "question_stem": "A magnet attracts", "choices": {"text": ["iron", "wood", "glass", "qqqq"], "label": ["A", "B", "C", "D"]}, "answerKey": " D"}""",
            """{"id": "7-982", "question": {"stem": "Water boils at", "choices": [{"text": "100 C", "label": "A"}, {"text": "q", "label": "B"}]}, "answerKey": "A"}""");
        Assert.Equal("The sun is responsible for", task.Items[0].Contexts[0]);
        Assert.Equal(" plants sprouting", task.Items[0].Continuations[1]);
        Assert.Equal([1, 3, 0], task.Items.Select(i => i.Label));
        Assert.Equal("Water boils at", task.Items[2].Contexts[0]);
        AssertAccuracies(task, 1.0 / 3, 1.0 / 3);
    }

    [Fact]
    public void SciQ_puts_the_correct_answer_last()
    {
        var task = Load("sciq",
            """{"question": "What makes cheese?", "distractor3": "viruses", "distractor1": "protozoa", "distractor2": "gymnosperms", "correct_answer": "mesophilic organisms", "support": "  Mesophiles grow best in moderate temperature."}""",
            """{"question": "What is qq?", "distractor3": "a", "distractor1": "b", "distractor2": "c", "correct_answer": "qq", "support": ""}""",
            """{"question": "Q?", "distractor3": "qq", "distractor1": "xx", "distractor2": "yy", "correct_answer": "zz", "support": "S."}""");
        Assert.Equal("Mesophiles grow best in moderate temperature.\nQuestion: What makes cheese?\nAnswer:", task.Items[0].Contexts[0]);
        Assert.Equal([" protozoa", " gymnosperms", " viruses", " mesophilic organisms"], task.Items[0].Continuations);
        Assert.Equal("\nQuestion: What is qq?\nAnswer:", task.Items[1].Contexts[0]);
        Assert.All(task.Items, i => Assert.Equal(3, i.Label));
        // Item 1: all choices lack 'q', so per character the longest (the correct one) wins but not on the sum.
        AssertAccuracies(task, 1.0 / 3, 2.0 / 3);
    }

    [Fact]
    public void WinoGrande_fills_the_blank_and_scores_only_the_rest()
    {
        var task = Load("winogrande",
            """{"sentence": "Ian ate Dennis's menudo because _ despised eating intestine.", "option1": "Ian", "option2": "Dennis", "answer": "2"}""",
            """{"sentence": "The box was too small for the q so _ qq rest.", "option1": "ball", "option2": "q", "answer": "2"}""",
            """{"sentence": "She gave _ a qq.", "option1": "Maq", "option2": "Bob", "answer": "2"}""");
        Assert.Equal(["Ian ate Dennis's menudo because Ian", "Ian ate Dennis's menudo because Dennis"], task.Items[0].Contexts);
        Assert.Equal([" despised eating intestine.", " despised eating intestine."], task.Items[0].Continuations);
        Assert.Equal([1, 1, 1], task.Items.Select(i => i.Label));
        // The q-loving model prefers a space after 'q': option "q" wins item 2, "Maq" wrongly wins item 3.
        AssertAccuracies(task, 1.0 / 3, 1.0 / 3);
    }

    [Fact]
    public void Race_reads_per_question_rows_and_grouped_articles_with_python_literal_problems()
    {
        var task = Load("race",
            """{"example_id": "high1.txt", "article": "Nancy fell.", "answer": "C", "question": "What did Nancy do?", "options": ["ran", "sat", "fell", "qq"]}""",
            """{"article": "A B C", "problems": "[{'answer': 'A', 'options': ['x', 'y', 'z', 'w'], 'question': 'Q1?'}, {'answer': 'B', 'options': [\"it's\", 'b', 'c', 'd'], 'question': 'The boy went to the  _  .'}, {'answer': 'D', 'options': ['o1', 'o2', 'o3', 'qq'], 'question': 'Final?'}]"}""",
            """{"article": "JSON form.", "problems": [{"answer": "B", "options": ["a", "qq"], "question": "Pick."}]}""");
        Assert.Equal("Article: Nancy fell.\n\nWhat did Nancy do?", task.Items[0].Contexts[0]);
        Assert.Equal([" ran", " sat", " fell", " qq"], task.Items[0].Continuations);
        Assert.Equal("Article: A B C\n\nQuestion: Q1?\nAnswer: x\n _  .b\nFinal?", task.Items[1].Contexts[0]);
        Assert.Equal([2, 3, 1], task.Items.Select(i => i.Label));
        AssertAccuracies(task, 2.0 / 3, 2.0 / 3);
    }

    [Fact]
    public void Generic_format_takes_context_choices_label_and_an_optional_delimiter()
    {
        var task = Load("mc",
            """{"context": "Pick:", "choices": ["qq", "b"], "label": 0}""",
            """{"context": "Pick:", "choices": ["qqqqqqxx", "x"], "label": 1}""",
            """{"context": "Pick:", "choices": ["ab", "q"], "label": 0, "delimiter": " "}""");
        Assert.Equal([" qq", " b"], task.Items[0].Continuations);
        Assert.Equal([2, 1], task.Items[0].NormalizationLengths);
        AssertAccuracies(task, 2.0 / 3, 1.0 / 3);
    }

    [Fact]
    public void Lambada_splits_at_the_last_space()
    {
        using var dir = TestPaths.NewTempDir();
        var task = TaskLoader.LoadLambada(TaskReference.Write(dir, "lambada.jsonl",
            """{"text": "In my palm is a clear stone.\n\nI look at him. But I don't care about signs"}""",
            """{"text": "the q q"}""",
            """{"text": "the qq qq"}"""));
        Assert.Equal(new ClozeItem("In my palm is a clear stone.\n\nI look at him. But I don't care about", " signs"), task.Items[0]);
        Assert.Equal(new ClozeItem("the q", " q"), task.Items[1]);
        // Greedy on the q-loving model: after 'q' comes ' ' then 'q' (item 2 hit); " qq" needs 'q' after 'q' (miss).
        var model = TableModel.LovesQ();
        var result = new ModelEvaluator(model, new CharTokenizer()).Cloze(task);
        Assert.Equal(1.0 / 3, result.Accuracy, 12);
        double meanLl = task.Items.Average(i => TaskReference.LogLikelihood(model, i.Context, i.Target));
        Assert.Equal(-meanLl, Math.Log(result.Perplexity), 4);
        Assert.Equal(6 + 2 + 3, result.TargetTokens);
    }

    [Fact]
    public async Task Parquet_exports_load_like_jsonl()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("arc.parquet");
        var rows = new[]
        {
            new ArcRow { Id = "a", Question = "Which is a gas?", Choices = new ArcChoices { Text = ["ice", "steam"], Label = ["A", "B"] }, AnswerKey = "B" },
            new ArcRow { Id = "b", Question = "Pick qq.", Choices = new ArcChoices { Text = ["qq", "rr"], Label = ["1", "2"] }, AnswerKey = "1" },
        };
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(rows, path);
        var task = TaskLoader.LoadMultipleChoice("arc_easy", path);
        Assert.Equal("Question: Which is a gas?\nAnswer:", task.Items[0].Contexts[0]);
        Assert.Equal([" ice", " steam"], task.Items[0].Continuations);
        Assert.Equal([1, 0], task.Items.Select(i => i.Label));
    }

    public sealed class ArcRow
    {
        [System.Text.Json.Serialization.JsonPropertyName("id")] public string Id { get; set; } = "";
        [System.Text.Json.Serialization.JsonPropertyName("question")] public string Question { get; set; } = "";
        [System.Text.Json.Serialization.JsonPropertyName("choices")] public ArcChoices Choices { get; set; } = new();
        [System.Text.Json.Serialization.JsonPropertyName("answerKey")] public string AnswerKey { get; set; } = "";
    }

    public sealed class ArcChoices
    {
        [System.Text.Json.Serialization.JsonPropertyName("text")] public List<string> Text { get; set; } = [];
        [System.Text.Json.Serialization.JsonPropertyName("label")] public List<string> Label { get; set; } = [];
    }
}
