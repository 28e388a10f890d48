using System.Text.Json;
using Parquet.Serialization;
using ReplaceMe.Core.Calibration;

namespace ReplaceMe.Core.Tests.Calibration;

public class CalibrationFileTests
{
    [Fact]
    public void Plain_text_splits_on_blank_lines_or_lines()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("c.txt");
        File.WriteAllText(path, "Once upon a time\nthere was a cat.\n\n\n  \nThe end.\nReally.\n");
        Assert.Equal(["Once upon a time\nthere was a cat.", "The end.\nReally."], CalibrationFile.Read(path));
        Assert.Equal(["Once upon a time", "there was a cat.", "The end.", "Really."],
            CalibrationFile.Read(path, new CalibrationFileOptions(Split: TextSplit.Line)));
    }

    [Fact]
    public void First_n_and_seeded_random_n()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("c.txt");
        File.WriteAllLines(path, Enumerable.Range(0, 50).Select(i => $"doc {i}"));
        var opts = new CalibrationFileOptions(Split: TextSplit.Line);
        Assert.Equal(["doc 0", "doc 1", "doc 2"], CalibrationFile.Read(path, opts with { Selection = DocumentSelection.First(3) }));

        var a = CalibrationFile.Read(path, opts with { Selection = DocumentSelection.Sample(10, 7) });
        var b = CalibrationFile.Read(path, opts with { Selection = DocumentSelection.Sample(10, 7) });
        var c = CalibrationFile.Read(path, opts with { Selection = DocumentSelection.Sample(10, 8) });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(10, a.Distinct().Count());
        var order = a.Select(s => int.Parse(s[4..])).ToList();
        Assert.Equal(order.Order(), order);              // file order kept
        Assert.NotEqual(Enumerable.Range(0, 10), order); // not simply the first ten
        Assert.Equal(50, CalibrationFile.Read(path, opts with { Selection = DocumentSelection.First(500) }).Count);
    }

    [Fact]
    public void Jsonl_reads_a_text_column_and_renders_conversations()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("c.jsonl");
        var rows = new object[]
        {
            new { text = "plain one", conversations = new[]
            {
                new { from = "system", value = "Be kind." },
                new { from = "human", value = "What is 2+2?" },
                new { from = "gpt", value = "4." },
                new { from = "human", value = "And 3+3?" },
                new { from = "gpt", value = "6." },
            } },
        };
        File.WriteAllLines(path, rows.Select(r => JsonSerializer.Serialize(r)).Append("").Append("{\"text\":\"plain two\",\"conversations\":null}"));
        Assert.Equal(["plain one", "plain two"], CalibrationFile.Read(path));
        var chat = CalibrationFile.Read(path, new CalibrationFileOptions(Column: "conversations"));
        Assert.Equal(["<|user|>\nWhat is 2+2?\n<|assistant|>\n4."], chat);
        var withSystem = CalibrationFile.Read(path, new CalibrationFileOptions(Column: "conversations", Chat: new ChatTemplate(IncludeSystem: true)));
        Assert.Equal("<|system|>\nBe kind.\n<|user|>\nWhat is 2+2?\n<|assistant|>\n4.", withSystem[0]);
    }

    [Fact]
    public void Jsonl_errors_name_the_line_and_column()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("bad.jsonl");
        File.WriteAllLines(path, ["{\"text\":\"ok\"}", "", "{\"text\": oops}"]);
        var ex = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path));
        Assert.Contains("line 3", ex.Message);

        File.WriteAllLines(path, ["{\"text\":\"ok\"}", "{\"body\":\"x\"}"]);
        ex = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path));
        Assert.Contains("line 2", ex.Message);
        Assert.Contains("'text'", ex.Message);
        Assert.Contains("body", ex.Message);

        File.WriteAllLines(path, ["{\"conversations\":[{\"from\":\"gpt\",\"value\":\"no question\"}]}"]);
        ex = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path, new CalibrationFileOptions(Column: "conversations")));
        Assert.Contains("line 1", ex.Message);
        Assert.Contains("human", ex.Message);

        File.WriteAllLines(path, ["{\"text\":5}"]);
        Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path));
    }

    [Fact]
    public void Empty_and_missing_files_are_clear_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("empty.txt");
        File.WriteAllText(path, "\n  \n\n");
        var ex = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path));
        Assert.Contains("empty.txt", ex.Message);
        var missing = dir.Combine("nope.jsonl");
        var fnf = Assert.Throws<FileNotFoundException>(() => CalibrationFile.Read(missing));
        Assert.Contains("nope.jsonl", fnf.Message);
    }

    public sealed class ParquetRow
    {
        public string? Text { get; set; }
        public int Id { get; set; }
    }

    [Fact]
    public async Task Parquet_reads_a_string_column()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("c.parquet");
        var rows = Enumerable.Range(0, 30).Select(i => new ParquetRow { Text = i == 5 ? null : $"story {i}", Id = i }).ToList();
        await ParquetSerializer.SerializeAsync(rows, path);
        var docs = await CalibrationFile.ReadAsync(path, new CalibrationFileOptions(Column: "Text", Selection: DocumentSelection.First(6)));
        Assert.Equal(["story 0", "story 1", "story 2", "story 3", "story 4", "story 6"], docs);
        var ex = await Assert.ThrowsAsync<CheckpointFormatException>(() => CalibrationFile.ReadAsync(path, new CalibrationFileOptions(Column: "text")));
        Assert.Contains("Text", ex.Message);
        ex = await Assert.ThrowsAsync<CheckpointFormatException>(() => CalibrationFile.ReadAsync(path, new CalibrationFileOptions(Column: "Id")));
        Assert.Contains("expected strings", ex.Message);

        var notParquet = dir.Combine("broken.parquet");
        File.WriteAllText(notParquet, "this is not parquet at all");
        await Assert.ThrowsAsync<CheckpointFormatException>(() => CalibrationFile.ReadAsync(notParquet));
    }
}
