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
        sb.AppendLine("| model | removed blocks | estimator | rel. residual | cos before → after | prune time | of which profile / estimate |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var run in outcome.Runs)
        {
            var r = run.Reports[0];
            sb.AppendLine(Inv, $"| {run.Label} | {string.Join(", ", run.Cuts)} | {run.Estimator} | {Fmt(r.RelativeResidual)} | {Fmt(r.CosineBefore)} → {Fmt(r.CosineAfter)} | {run.PruneTime.TotalSeconds:F1} s | {Stage(run, "profile")} / {Stage(run, "estimate")} |");
        }
        return sb.ToString();
    }

    private static string Markdown(DemoOutcome outcome, DemoSettings settings)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# ReplaceMe demo: stories15M");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Command: `replaceme {Command(settings)}`. Model from {outcome.ModelOrigin}. Calibration: {settings.CalibrationStories} self-generated stories (seed {settings.Seed}, ≤ {settings.StoryTokens} new tokens); evaluation: {settings.HeldOutStories} held-out stories generated with another seed. Run time {outcome.Seconds} s on {outcome.Threads} torch thread(s) (estimated at the start: {outcome.Estimate.Total.TotalSeconds:F0} s).");
        sb.AppendLine();
        sb.AppendLine("Cuts are half-open ranges `[start, end)` of 0-based blocks; T is folded into block `start − 1`.");
        sb.AppendLine();
        sb.AppendLine("## Retention");
        sb.AppendLine();
        sb.AppendLine(outcome.Report.ToMarkdown());
        sb.AppendLine(Inv, $"The accuracies are last-word predictions on {settings.HeldOutStories} held-out stories, so one item moves them by {100.0 / settings.HeldOutStories:F1} points; RP differences within about two standard errors are noise. Perplexity, over every token of the same stories, separates the methods far more reliably.");
        sb.AppendLine();
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
                ["prune_stage_seconds"] = new JsonObject(run.Stages.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, kv.Value.TotalSeconds))),
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
                ["max_blocks"] = settings.MaxBlocks,
                ["command"] = "replaceme " + Command(settings),
            },
            ["threads"] = outcome.Threads,
            ["seconds"] = outcome.Elapsed.TotalSeconds,
            ["estimated_seconds"] = new JsonObject
            {
                ["total"] = outcome.Estimate.Total.TotalSeconds,
                ["generation"] = outcome.Estimate.Generation.TotalSeconds,
                ["evaluation"] = outcome.Estimate.Evaluation.TotalSeconds,
                ["pruning"] = outcome.Estimate.Pruning.TotalSeconds,
                ["probe_step_seconds"] = outcome.Estimate.StepSeconds,
                ["probe_token_seconds"] = outcome.Estimate.TokenSeconds,
            },
            ["retention"] = JsonNode.Parse(outcome.Report.ToJson()),
            ["runs"] = runs,
            ["samples"] = new JsonObject(outcome.Samples.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key, new JsonArray(kv.Value.Select(s => (JsonNode)s).ToArray())))),
            ["plots"] = new JsonArray(outcome.Plots.Select(p => (JsonNode)p).ToArray()),
        };
    }

    private static string Stage(DemoRun run, string name) =>
        run.Stages.TryGetValue(name, out var t) ? t.TotalSeconds.ToString("F1", Inv) + " s" : "–";

    /// <summary>The reproducing command line of a setting (what README and docs/results.md quote).</summary>
    public static string Command(DemoSettings settings)
    {
        var quick = new DemoSettings(settings.OutputDir, null, settings.CacheDir).Quick();
        var full = new DemoSettings(settings.OutputDir, null, settings.CacheDir);
        var basis = settings.CalibrationStories == quick.CalibrationStories && settings.HeldOutStories == quick.HeldOutStories && settings.StoryTokens == quick.StoryTokens
            ? quick : full;
        var args = new List<string> { "demo" };
        if (ReferenceEquals(basis, quick)) args.Add("--quick");
        if (settings.CalibrationStories != basis.CalibrationStories) args.Add($"--calibration-stories {settings.CalibrationStories}");
        if (settings.HeldOutStories != basis.HeldOutStories) args.Add($"--held-out-stories {settings.HeldOutStories}");
        if (settings.StoryTokens != basis.StoryTokens) args.Add($"--story-tokens {settings.StoryTokens}");
        if (settings.MaxBlocks != basis.MaxBlocks) args.Add($"--max-blocks {settings.MaxBlocks}");
        if (settings.Seed != basis.Seed) args.Add($"--seed {settings.Seed}");
        if (settings.Threads != basis.Threads) args.Add(settings.Threads is int t ? $"--threads {t}" : "--threads 0");
        return string.Join(' ', args);
    }

    private static string Fmt(double? v) => v is double d ? d.ToString("F4", Inv) : "–";
}
