using System.Text.Json.Nodes;
using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

public class RetentionReportTests
{
    private static RetentionReport Report() => RetentionReport.Create(
        new ModelScores("original", [new TaskScore("piqa", "acc", 0.80, true), new TaskScore("boolq", "acc", 0.60, true), new TaskScore("text", "ppl", 3.0, false)]),
        [new ModelScores("pruned", [new TaskScore("piqa", "acc", 0.72, true), new TaskScore("boolq", "acc", 0.54, true), new TaskScore("text", "ppl", 6.5, false)])]);

    [Fact]
    public void Average_and_retention_use_only_accuracies()
    {
        var report = Report();
        Assert.Equal(0.70, report.Baseline.Average!.Value, 12);
        Assert.Equal(0.63, report.Candidates[0].Average!.Value, 12);
        Assert.Equal(90.0, report.RetainedPercent(report.Candidates[0])!.Value, 9);
        Assert.Equal(90.0, report.TaskRetainedPercent(report.Candidates[0], "piqa acc")!.Value, 9);
        Assert.Null(report.TaskRetainedPercent(report.Candidates[0], "text ppl"));
    }

    [Fact]
    public void Renders_text_markdown_and_json()
    {
        var report = Report();
        var md = report.ToMarkdown().Split('\n');
        Assert.Equal("| model | piqa acc | boolq acc | text ppl ↓ | Avg | RP |", md[0]);
        Assert.Equal("| original | 80.0 | 60.0 | 3.00 | 70.0 | 100.0 % |", md[2]);
        Assert.Equal("| pruned | 72.0 (90.0 %) | 54.0 (90.0 %) | 6.50 | 63.0 | 90.0 % |", md[3]);

        var text = report.ToText().Split('\n');
        Assert.StartsWith("model   ", text[0]);
        Assert.Contains("72.0 (90.0 %)", text[2]);
        Assert.EndsWith("90.0 %", text[2]);

        var json = JsonNode.Parse(report.ToJson())!;
        var pruned = json["models"]![1]!;
        Assert.Equal("pruned", (string)pruned["model"]!);
        Assert.Equal(90.0, (double)pruned["retained_percent"]!, 9);
        Assert.Equal(0.72, (double)pruned["scores"]![0]!["value"]!, 12);
        Assert.Null(pruned["scores"]![2]!["retained_percent"]);
    }

    [Fact]
    public void Standard_errors_and_counts_are_shown_wherever_a_score_is()
    {
        var report = RetentionReport.Create(
            new ModelScores("original", [new TaskScore("cloze", "acc", 0.50, true, 0.10, 24), new TaskScore("text", "ppl", 2.0, false, 0.05, 24)]),
            [new ModelScores("pruned", [new TaskScore("cloze", "acc", 0.40, true, 0.08, 24), new TaskScore("text", "ppl", 4.0, false, 0.2, 23)])]);
        var pruned = report.Candidates[0];

        Assert.Equal(0.08, pruned.AverageStdErr!.Value, 12);
        // RP = 80 %; delta method: 80 · √((0.08/0.4)² + (0.1/0.5)²) = 80 · √0.08.
        Assert.Equal(80 * Math.Sqrt(0.08), report.RetainedPercentStdErr(pruned)!.Value, 9);
        Assert.Equal(0, report.RetainedPercentStdErr(report.Baseline)!.Value);

        var md = report.ToMarkdown().Split('\n');
        Assert.Equal("| model | cloze acc (n=24) | text ppl ↓ (n=24) | Avg | RP |", md[0]);
        Assert.Equal("| original | 50.0 ± 10.0 | 2.00 ± 0.05 | 50.0 ± 10.0 | 100.0 % |", md[2]);
        Assert.Equal("| pruned | 40.0 ± 8.0 (80.0 %) | 4.00 ± 0.20 [n=23] | 40.0 ± 8.0 | 80.0 ± 22.6 % |", md[3]);
        Assert.Contains("± is one standard error", report.ToMarkdown(), StringComparison.Ordinal);
        Assert.Contains("n = items scored", report.ToText(), StringComparison.Ordinal);

        var json = JsonNode.Parse(report.ToJson())!["models"]![1]!;
        Assert.Equal(0.08, (double)json["average_stderr"]!, 12);
        Assert.Equal(80 * Math.Sqrt(0.08), (double)json["retained_percent_stderr"]!, 9);
        Assert.Equal(23, (int)json["scores"]![1]!["count"]!);
        Assert.Equal(0.2, (double)json["scores"]![1]!["stderr"]!, 12);
    }

    [Fact]
    public void Without_standard_errors_there_is_no_average_error_and_no_legend()
    {
        var report = Report();
        Assert.Null(report.Candidates[0].AverageStdErr);
        Assert.Null(report.RetainedPercentStdErr(report.Candidates[0]));
        Assert.DoesNotContain("±", report.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_metrics_are_rejected()
    {
        var twice = new ModelScores("m", [new TaskScore("a", "acc", 0.5, true), new TaskScore("a", "acc", 0.6, true)]);
        Assert.Throws<ArgumentException>(() => RetentionReport.Create(twice, []));
    }
}
