using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// The paper's comparison table: each model's score per task, the average of its accuracies (Avg), and that
/// average as a percentage of the original model's (RP, "retained performance"). Perplexities are shown but do
/// not enter averages. Accuracies render as percentages with one decimal, perplexities with two decimals. Where a
/// score has a standard error it is shown as <c>value ± SE</c>, and each column names its item count (<c>n=…</c>: items,
/// or documents for a perplexity) so that a reader can tell a real difference from noise.
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

    /// <summary>
    /// Standard error of <see cref="RetainedPercent"/> by the delta method, RP · √((SE_a/a)² + (SE_b/b)²), from the
    /// averages' standard errors. It treats the two models' scores as independent; they are scored on the same items
    /// and positively correlated, so this overstates the error (conservative). 0 for the original itself; null without
    /// standard errors.
    /// </summary>
    public double? RetainedPercentStdErr(ModelScores model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (ReferenceEquals(model, Baseline)) return RetainedPercent(model) is null ? null : 0;
        if (RetainedPercent(model) is not { } rp || model.Average is not { } a || Baseline.Average is not { } b
            || model.AverageStdErr is not { } sa || Baseline.AverageStdErr is not { } sb) return null;
        double relA = a > 0 ? sa / a : 0, relB = sb / b;
        if (a <= 0) return 100 * sa / b; // RP = 0: only the numerator's error matters
        return rp * Math.Sqrt(relA * relA + relB * relB);
    }

    /// <summary>A task's accuracy as a percentage of the original's (null for perplexities or missing tasks).</summary>
    public double? TaskRetainedPercent(ModelScores model, string columnKey)
    {
        ArgumentNullException.ThrowIfNull(model);
        var s = Find(model, columnKey);
        var b = Find(Baseline, columnKey);
        return s is { HigherIsBetter: true } && b is { Value: > 0 } ? 100 * s.Value / b.Value : null;
    }

    /// <summary>Aligned plain-text table (and a legend line when standard errors are shown).</summary>
    public string ToText()
    {
        var rows = Rows();
        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var row in rows)
            sb.AppendLine(string.Join("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
        if (Legend() is { } legend) sb.AppendLine(legend);
        return sb.ToString();
    }

    /// <summary>What ± and n mean, when the table shows them; null otherwise.</summary>
    private string? Legend()
    {
        var all = Candidates.Prepend(Baseline).SelectMany(m => m.Scores).ToList();
        bool errors = all.Any(s => s.StdErr is not null), counts = all.Any(s => s.Count > 0);
        if (!errors && !counts) return null;
        var parts = new List<string>();
        if (errors) parts.Add("± is one standard error (accuracy: over items; perplexity: over documents, delta method; RP: delta method, conservative)");
        if (counts) parts.Add("n = items scored (documents for a perplexity)");
        return string.Join("; ", parts) + ".";
    }

    /// <summary>GitHub-flavoured Markdown table.</summary>
    public string ToMarkdown()
    {
        var rows = Rows();
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", rows[0]) + " |");
        sb.AppendLine("|" + string.Concat(rows[0].Select((_, c) => c == 0 ? "---|" : "---:|")));
        foreach (var row in rows.Skip(1)) sb.AppendLine("| " + string.Join(" | ", row) + " |");
        if (Legend() is { } legend) sb.AppendLine().AppendLine(legend);
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
                ["average"] = model.Average, ["average_stderr"] = model.AverageStdErr,
                ["retained_percent"] = RetainedPercent(model), ["retained_percent_stderr"] = RetainedPercentStdErr(model),
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
                if (s is not null && Count(key) is int n && s.Count != n) cell += string.Create(CultureInfo.InvariantCulture, $" [n={s.Count}]");
                if (s is not null && !ReferenceEquals(model, Baseline) && TaskRetainedPercent(model, key) is { } p)
                    cell += string.Create(CultureInfo.InvariantCulture, $" ({p:F1} %)");
                row.Add(cell);
            }
            row.Add(model.Average is { } a ? (100 * a).ToString("F1", CultureInfo.InvariantCulture) + PlusMinus(100 * model.AverageStdErr, "F1") : "–");
            row.Add(RetainedPercent(model) is { } r
                ? r.ToString("F1", CultureInfo.InvariantCulture) + (ReferenceEquals(model, Baseline) ? "" : PlusMinus(RetainedPercentStdErr(model), "F1")) + " %"
                : "–");
            rows.Add(row.ToArray());
        }
        return rows;
    }

    private string Column(string key)
    {
        var s = First(key);
        string name = s.HigherIsBetter ? key : key + " ↓";
        return Count(key) is int n ? string.Create(CultureInfo.InvariantCulture, $"{name} (n={n})") : name;
    }

    private TaskScore First(string key) => Find(Baseline, key) ?? Candidates.Select(m => Find(m, key)).First(x => x is not null)!;

    /// <summary>The column's item count (the original's, else the first model's); null when not recorded.</summary>
    private int? Count(string key) => First(key).Count is > 0 and var n ? n : null;

    private static string Format(TaskScore s) => s.HigherIsBetter
        ? (100 * s.Value).ToString("F1", CultureInfo.InvariantCulture) + PlusMinus(100 * s.StdErr, "F1")
        : s.Value.ToString("F2", CultureInfo.InvariantCulture) + PlusMinus(s.StdErr, "F2");

    private static string PlusMinus(double? stdErr, string format) =>
        stdErr is { } e ? " ± " + e.ToString(format, CultureInfo.InvariantCulture) : "";

    private static TaskScore? Find(ModelScores model, string key) => model.Scores.FirstOrDefault(s => s.Key == key);
}
