using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

public class BadInputTests
{
    private static Exception Fails(string format, params string[] lines)
    {
        using var dir = TestPaths.NewTempDir();
        var path = TaskReference.Write(dir, "task.jsonl", lines);
        return Assert.ThrowsAny<Exception>(() => TaskLoader.LoadMultipleChoice(format, path));
    }

    [Fact]
    public void Malformed_json_names_the_line()
    {
        var ex = Assert.IsType<CheckpointFormatException>(Fails("piqa",
            """{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}""",
            """{"goal": "g", "sol1": "a", """));
        Assert.Contains("task.jsonl:2: malformed JSON", ex.Message);
    }

    [Fact]
    public void Missing_fields_and_wrong_types_name_file_line_and_field()
    {
        var ex = Fails("piqa", """{"goal": "g", "sol1": "a", "label": 0}""");
        Assert.Contains("task.jsonl:1: missing string field 'sol2'", ex.Message);
        ex = Fails("hellaswag", """{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": "not a list", "label": 0}""");
        Assert.Contains("missing array field 'endings'", ex.Message);
        ex = Fails("mc", """{"context": "c", "choices": ["a", "b"], "label": "x"}""");
        Assert.Contains("label field 'label' must be an integer", ex.Message);
        ex = Fails("mc", "[1, 2]");
        Assert.Contains("element 1 is not a JSON object", ex.Message);
    }

    [Fact]
    public void Labels_out_of_range_are_errors()
    {
        var ex = Fails("mc", """{"context": "c", "choices": ["a", "b"], "label": 0}""", """{"context": "c", "choices": ["a", "b"], "label": 2}""");
        Assert.Contains("task.jsonl:2: label 2 in 'label' is outside [0, 2)", ex.Message);
        ex = Fails("arc_easy", """{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"}""");
        Assert.Contains("answerKey 'E' is not one of the choice labels [A, B]", ex.Message);
        ex = Fails("winogrande", """{"sentence": "a _ b", "option1": "x", "option2": "y", "answer": "3"}""");
        Assert.Contains("outside [0, 2)", ex.Message);
        ex = Fails("race", """{"article": "a", "question": "q", "options": ["a", "b", "c", "d"], "answer": "F"}""");
        Assert.Contains("answer 'F' is not a letter A–D", ex.Message);
    }

    [Fact]
    public void Empty_and_unlabelled_files_and_unknown_formats_are_rejected()
    {
        Assert.Contains("holds no records", Fails("piqa", "", "  ").Message);
        Assert.Contains("no labelled records (1 unlabelled)", Fails("winogrande", """{"sentence": "a _ b", "option1": "x", "option2": "y", "answer": ""}""").Message);
        Assert.Contains("has no blank '_'", Fails("winogrande", """{"sentence": "a b", "option1": "x", "option2": "y", "answer": "1"}""").Message);
        Assert.Contains("Unknown task format 'nope'", Fails("nope", "{}").Message);
        Assert.IsType<FileNotFoundException>(Assert.ThrowsAny<Exception>(() => TaskLoader.LoadMultipleChoice("piqa", "/nonexistent/piqa.jsonl")));
        using var dir = TestPaths.NewTempDir();
        var bad = TaskReference.Write(dir, "l.jsonl", """{"text": "oneword"}""");
        Assert.Contains("l.jsonl:1: 'text' needs at least two", Assert.Throws<CheckpointFormatException>(() => TaskLoader.LoadLambada(bad)).Message);
        var blank = TaskReference.Write(dir, "t.txt", "", "   ", "");
        Assert.Contains("holds no text", Assert.Throws<CheckpointFormatException>(() => TaskLoader.ReadDocuments(blank)).Message);
        var notParquet = TaskReference.Write(dir, "x.parquet", "not parquet");
        Assert.Contains("not a readable Parquet file", Assert.Throws<CheckpointFormatException>(() => TaskLoader.LoadMultipleChoice("piqa", notParquet)).Message);
    }
}
