using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Cli.Demo;

/// <summary>Writes <c>report.md</c> and <c>report.json</c> of a demo run.</summary>
internal static class DemoReportWriter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string root, DemoOutcome outcome, DemoSettings settings)
    {
        File.WriteAllText(Path.Combine(root, "report.md"), Markdown(outcome, settings));
        File.WriteAllText(Path.Combine(root, "report.json"), Json(outcome, settings).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The cut/estimator table shared by the console and the Markdown report.</summary>
    public static string RunsTable(DemoOutcome outcome)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| model | removed blocks | estimator | rel. residual | cos before → after | prune time |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var run in outcome.Runs)
        {
            var r = run.Reports[0];
            sb.AppendLine(Inv, $"| {run.Label} | {string.Join(", ", run.Cuts)} | {run.Estimator} | {Fmt(r.RelativeResidual)} | {Fmt(r.CosineBefore)} → {Fmt(r.CosineAfter)} | {run.PruneTime.TotalSeconds:F1} s |");
        }
        return sb.ToString();
    }

    private static string Markdown(DemoOutcome outcome, DemoSettings settings)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# ReplaceMe demo: stories15M");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Model from {outcome.ModelOrigin}. Calibration: {settings.CalibrationStories} self-generated stories (seed {settings.Seed}, ≤ {settings.StoryTokens} new tokens); evaluation: {settings.HeldOutStories} held-out stories generated with another seed. Run time {outcome.Seconds} s.");
        sb.AppendLine();
        sb.AppendLine("Cuts are half-open ranges `[start, end)` of 0-based blocks; T is folded into block `start − 1`.");
        sb.AppendLine();
        sb.AppendLine("## Retention");
        sb.AppendLine();
        sb.AppendLine(outcome.Report.ToMarkdown());
        sb.AppendLine("## Cuts and estimators");
        sb.AppendLine();
        sb.AppendLine(RunsTable(outcome));
        sb.AppendLine("## Sample generations (greedy, 40 new tokens)");
        sb.AppendLine();
        foreach (var (model, texts) in outcome.Samples)
        {
            sb.AppendLine(Inv, $"**{model}**");
            sb.AppendLine();
            foreach (var t in texts) sb.AppendLine("> " + t.ReplaceLineEndings(" ")).AppendLine();
        }
        sb.AppendLine("## Plots");
        sb.AppendLine();
        foreach (var p in outcome.Plots) sb.AppendLine(Inv, $"![{Path.GetFileNameWithoutExtension(p)}]({p.Replace('\\', '/')})");
        return sb.ToString();
    }

    private static JsonObject Json(DemoOutcome outcome, DemoSettings settings)
    {
        var runs = new JsonArray();
        foreach (var run in outcome.Runs)
        {
            var r = run.Reports[0];
            runs.Add(new JsonObject
            {
                ["label"] = run.Label,
                ["blocks"] = run.Blocks,
                ["estimator"] = run.Estimator,
                ["cuts"] = new JsonArray(run.Cuts.Select(c => (JsonNode)new JsonObject { ["start"] = c.Start, ["end"] = c.End }).ToArray()),
                ["relative_residual"] = r.RelativeResidual,
                ["cosine_before"] = r.CosineBefore,
                ["cosine_after"] = r.CosineAfter,
                ["loss_curve"] = r.LossCurve is null ? null : new JsonArray(r.LossCurve.Select(v => (JsonNode)v).ToArray()),
                ["prune_seconds"] = run.PruneTime.TotalSeconds,
            });
        }
        return new JsonObject
        {
            ["model_origin"] = outcome.ModelOrigin,
            ["settings"] = new JsonObject
            {
                ["calibration_stories"] = settings.CalibrationStories,
                ["held_out_stories"] = settings.HeldOutStories,
                ["story_tokens"] = settings.StoryTokens,
                ["seed"] = settings.Seed,
            },
            ["seconds"] = outcome.Elapsed.TotalSeconds,
            ["retention"] = JsonNode.Parse(outcome.Report.ToJson()),
            ["runs"] = runs,
            ["samples"] = new JsonObject(outcome.Samples.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, new JsonArray(kv.Value.Select(s => (JsonNode)s).ToArray())))),
            ["plots"] = new JsonArray(outcome.Plots.Select(p => (JsonNode)p).ToArray()),
        };
    }

    private static string Fmt(double? v) => v is double d ? d.ToString("F4", Inv) : "–";
}
