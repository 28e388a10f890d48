using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// The paper's comparison table: each model's score per task, the average of its accuracies (Avg), and that
/// average as a percentage of the original model's (RP, "retained performance"). Perplexities are shown but do
/// not enter averages. Accuracies render as percentages with one decimal, perplexities with two decimals.
/// </summary>
public sealed class RetentionReport
{
    private RetentionReport(ModelScores baseline, IReadOnlyList<ModelScores> candidates, IReadOnlyList<string> columns)
    {
        Baseline = baseline;
        Candidates = candidates;
        Columns = columns;
    }

    /// <summary>The original model.</summary>
    public ModelScores Baseline { get; }

    /// <summary>The pruned models, in order.</summary>
    public IReadOnlyList<ModelScores> Candidates { get; }

    /// <summary>Column keys (<see cref="TaskScore.Key"/>) in first-seen order.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>Builds the report.</summary>
    /// <exception cref="ArgumentException">A model reports the same task metric twice.</exception>
    public static RetentionReport Create(ModelScores baseline, IReadOnlyList<ModelScores> candidates)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(candidates);
        var columns = new List<string>();
        foreach (var model in candidates.Prepend(baseline))
        {
            var keys = model.Scores.Select(s => s.Key).ToArray();
            if (keys.Distinct(StringComparer.Ordinal).Count() != keys.Length)
                throw new ArgumentException($"Model '{model.Model}' reports a task metric twice.", nameof(candidates));
            foreach (var key in keys) if (!columns.Contains(key)) columns.Add(key);
        }
        return new RetentionReport(baseline, candidates, columns);
    }

    /// <summary>Average accuracy of <paramref name="model"/> as a percentage of the original's (null without accuracies).</summary>
    public double? RetainedPercent(ModelScores model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Average is { } a && Baseline.Average is { } b && b > 0 ? 100 * a / b : null;
    }

    /// <summary>A task's accuracy as a percentage of the original's (null for perplexities or missing tasks).</summary>
    public double? TaskRetainedPercent(ModelScores model, string columnKey)
    {
        ArgumentNullException.ThrowIfNull(model);
        var s = Find(model, columnKey);
        var b = Find(Baseline, columnKey);
        return s is { HigherIsBetter: true } && b is { Value: > 0 } ? 100 * s.Value / b.Value : null;
    }

    /// <summary>Aligned plain-text table.</summary>
    public string ToText()
    {
        var rows = Rows();
        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var row in rows)
            sb.AppendLine(string.Join("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
        return sb.ToString();
    }

    /// <summary>GitHub-flavoured Markdown table.</summary>
    public string ToMarkdown()
    {
        var rows = Rows();
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", rows[0]) + " |");
        sb.AppendLine("|" + string.Concat(rows[0].Select((_, c) => c == 0 ? "---|" : "---:|")));
        foreach (var row in rows.Skip(1)) sb.AppendLine("| " + string.Join(" | ", row) + " |");
        return sb.ToString();
    }

    /// <summary>Indented JSON: every score with its standard error, counts and retention, plus averages.</summary>
    public string ToJson()
    {
        var models = new JsonArray();
        foreach (var model in Candidates.Prepend(Baseline))
        {
            var scores = new JsonArray();
            foreach (var s in model.Scores)
            {
                scores.Add(new JsonObject
                {
                    ["task"] = s.Task, ["metric"] = s.Metric, ["value"] = s.Value, ["stderr"] = s.StdErr,
                    ["higher_is_better"] = s.HigherIsBetter, ["count"] = s.Count, ["skipped"] = s.Skipped,
                    ["retained_percent"] = TaskRetainedPercent(model, s.Key),
                });
            }
            models.Add(new JsonObject
            {
                ["model"] = model.Model, ["baseline"] = ReferenceEquals(model, Baseline), ["scores"] = scores,
                ["average"] = model.Average, ["retained_percent"] = RetainedPercent(model),
            });
        }
        return new JsonObject { ["models"] = models }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private List<string[]> Rows()
    {
        var header = new List<string> { "model" };
        header.AddRange(Columns.Select(c => Column(c)));
        header.Add("Avg");
        header.Add("RP");
        var rows = new List<string[]> { header.ToArray() };
        foreach (var model in Candidates.Prepend(Baseline))
        {
            var row = new List<string> { model.Model };
            foreach (var key in Columns)
            {
                var s = Find(model, key);
                string cell = s is null ? "–" : Format(s);
                if (s is not null && !ReferenceEquals(model, Baseline) && TaskRetainedPercent(model, key) is { } p)
                    cell += string.Create(CultureInfo.InvariantCulture, $" ({p:F1} %)");
                row.Add(cell);
            }
            row.Add(model.Average is { } a ? (100 * a).ToString("F1", CultureInfo.InvariantCulture) : "–");
            row.Add(RetainedPercent(model) is { } r ? r.ToString("F1", CultureInfo.InvariantCulture) + " %" : "–");
            rows.Add(row.ToArray());
        }
        return rows;
    }

    private string Column(string key)
    {
        var s = Find(Baseline, key) ?? Candidates.Select(m => Find(m, key)).First(x => x is not null)!;
        return s.HigherIsBetter ? key : key + " ↓";
    }

    private static string Format(TaskScore s) => s.HigherIsBetter
        ? (100 * s.Value).ToString("F1", CultureInfo.InvariantCulture)
        : s.Value.ToString("F2", CultureInfo.InvariantCulture);

    private static TaskScore? Find(ModelScores model, string key) => model.Scores.FirstOrDefault(s => s.Key == key);
}
