using System.Text.Json.Nodes;
using ReplaceMe.Cli;
using ReplaceMe.Core.Tests.Plots;

namespace ReplaceMe.Core.Tests.Cli;

public class DemoCommandTests
{

    private static readonly int ThreadsBefore = TorchSharp.torch.get_num_threads();

    [Fact]
    public void A_tiny_demo_writes_models_report_and_real_plots()
    {
        _ = ThreadsBefore;
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("demo");
        var (code, stdout, stderr) = CliRun.Run("demo", "--model-source", Stories15MTestModel.FilesDir, "--out", outDir,
            "--calibration-stories", "16", "--held-out-stories", "8", "--story-tokens", "48", "--max-blocks", "1");
        Assert.True(code == 0, stderr + stdout);

        // The retention table lists the original, the three pruned variants and (for the largest n, here 1) the
        // constrained diagonal and orthonormal T; the sample generations follow.
        foreach (var label in new[] { "original", "lstsq-1", "cosine-1", "identity-1", "diag-1", "orthonormal-1" })
            Assert.Contains(label, stdout, StringComparison.Ordinal);
        Assert.Contains("Once upon a time", stdout, StringComparison.Ordinal);
        // The demo ends by running the best pruned model from its GGUF file with LLamaSharp: the same greedy text.
        var lines = stdout.Split('\n');
        var library = lines.Single(l => l.StartsWith("  library ", StringComparison.Ordinal))["  library ".Length..].Trim();
        var llamaSharp = lines.Single(l => l.StartsWith("  LLamaSharp ", StringComparison.Ordinal))["  LLamaSharp ".Length..].Trim();
        Assert.StartsWith("Once upon a time", library, StringComparison.Ordinal);
        Assert.Equal(library, llamaSharp);
        Assert.Single(Directory.GetFiles(Path.Combine(outDir, "models"), "*-1.gguf"));

        foreach (var model in new[] { "original", "lstsq-1", "cosine-1", "identity-1", "diag-1", "orthonormal-1" })
            Assert.True(File.Exists(Path.Combine(outDir, "models", model, "config.json")), model);
        var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "models", "lstsq-1", "replaceme.json")))!;
        Assert.NotNull(provenance);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "models", "lstsq-1", "config.json")))!;
        Assert.Equal(5, (int)config["num_hidden_layers"]!);

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal(5, report["runs"]!.AsArray().Count);
        var markdown = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("## Retention", markdown, StringComparison.Ordinal);

        // The prune time is the pipeline's total, not total + stages (which doubled it): the stages add up to it.
        foreach (var run in report["runs"]!.AsArray())
        {
            double prune = (double)run!["prune_seconds"]!;
            double stages = run["prune_stage_seconds"]!.AsObject().Sum(kv => (double)kv.Value!);
            Assert.InRange(stages, 0.8 * prune, prune + 1e-6);
        }

        // Every score carries its item count and standard error: console, report.md and report.json.
        Assert.Contains("last-word cloze acc (n=8)", stdout, StringComparison.Ordinal);
        Assert.Contains("held-out stories ppl ↓ (n=8)", markdown, StringComparison.Ordinal);
        Assert.Contains(" ± ", stdout.Split('\n').First(l => l.StartsWith("lstsq-1", StringComparison.Ordinal)), StringComparison.Ordinal);
        foreach (var model in report["retention"]!["models"]!.AsArray())
            foreach (var score in model!["scores"]!.AsArray())
            {
                Assert.Equal(8, (int)score!["count"]!);
                Assert.True((double)score["stderr"]! > 0, $"{model["model"]} {score["task"]} {score["metric"]}");
            }
        Assert.NotNull(report["retention"]!["models"]![1]!["retained_percent_stderr"]);

        // The estimate comes before the first stage, a revision after the calibration stories; the thread setting is
        // recorded and put back afterwards.
        int estimateLine = stdout.IndexOf("Estimated run time", StringComparison.Ordinal);
        Assert.InRange(estimateLine, 0, stdout.IndexOf("Generating", StringComparison.Ordinal));
        Assert.InRange(stdout.IndexOf("Revised estimate", StringComparison.Ordinal), estimateLine, stdout.IndexOf("held-out stories …", StringComparison.Ordinal));
        Assert.Equal(1, (int)report["threads"]!);
        Assert.True((double)report["estimated_seconds"]!["total"]! > 0);
        Assert.Equal("replaceme demo --calibration-stories 16 --held-out-stories 8 --story-tokens 48 --max-blocks 1", (string)report["settings"]!["command"]!);
        Assert.Equal(ThreadsBefore, TorchSharp.torch.get_num_threads());

        var plots = Path.Combine(outDir, "plots");
        foreach (var png in new[] { "distance-heatmap.png", "distance-profile-n1.png", "loss-cosine-1.png", "retention-held-out-stories-ppl.png" })
            PlotWriterTests.AssertValidPng(Path.Combine(plots, png));

        // Nothing half-written beside the output folder.
        Assert.DoesNotContain(Directory.GetDirectories(dir.Path), d => Path.GetFileName(d).StartsWith(".demo", StringComparison.Ordinal));

        // The same command again succeeds: the demo replaces its own earlier output (marked as the library's).
        File.WriteAllText(Path.Combine(outDir, "report.md"), "stale");
        var again = CliRun.Run("demo", "--model-source", Stories15MTestModel.FilesDir, "--out", outDir,
            "--calibration-stories", "16", "--held-out-stories", "8", "--story-tokens", "48", "--max-blocks", "1");
        Assert.True(again.ExitCode == 0, again.Error + again.Out);
        Assert.Contains("## Retention", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void An_existing_folder_the_library_did_not_write_is_refused_before_any_work()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.Combine("notes.txt"), "mine");
        var (code, stdout, stderr) = CliRun.Run("demo", "--model-source", Stories15MTestModel.FilesDir, "--out", dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("not written by ReplaceMe.Core", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.DoesNotContain("Generating", stdout, StringComparison.Ordinal);
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }
}

public class DemoEstimateTests
{
    [Fact]
    public void The_estimate_prices_each_stage_from_the_setting_and_the_probes()
    {
        var full = new ReplaceMe.Cli.Demo.DemoSettings("out", null, "cache");
        var e = ReplaceMe.Cli.Demo.DemoEstimate.Price(stepSeconds: 0.05, tokenSeconds: 5e-4, full);
        // 160 + 48 stories in batches of 16: 10 + 3 batches of 160 × fill steps.
        Assert.Equal(13 * 160 * ReplaceMe.Cli.Demo.DemoEstimate.GenerationFill * 0.05, e.Generation.TotalSeconds, 6);
        // 8 pruned variants (3 estimators × 2 n, plus diag-2 and orthonormal-2), each over 160 stories of 161 tokens.
        Assert.Equal(8 * 160 * 161 * 5e-4 * ReplaceMe.Cli.Demo.DemoEstimate.PrunePasses, e.Pruning.TotalSeconds, 6);
        Assert.Equal(e.Generation + e.Evaluation + e.Pruning, e.Total);

        var quick = ReplaceMe.Cli.Demo.DemoEstimate.Price(0.05, 5e-4, full.Quick());
        Assert.True(quick.Total < e.Total / 2);
        var slower = ReplaceMe.Cli.Demo.DemoEstimate.Price(0.10, 1e-3, full);
        Assert.Equal(2 * e.Total.TotalSeconds, slower.Total.TotalSeconds, 6);
        Assert.Contains("Estimated run time", e.Describe(1), StringComparison.Ordinal);

        // Calibration generation is 10 of the 13 generation batches; if it takes twice its share, the rest is doubled.
        Assert.Equal(10.0 / 13, e.CalibrationShare, 12);
        var revised = e.Revise(TimeSpan.FromSeconds(2 * e.Generation.TotalSeconds * 10 / 13));
        Assert.Equal(2, revised.Pace, 9);
        Assert.Equal(2 * (e.Generation.TotalSeconds * 3 / 13 + e.Evaluation.TotalSeconds + e.Pruning.TotalSeconds), revised.Remaining.TotalSeconds, 6);
        Assert.Contains("2.0× the estimate", revised.Describe(), StringComparison.Ordinal);
    }
}
