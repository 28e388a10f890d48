using System.Text.Json.Nodes;
using ReplaceMe.Cli;
using ReplaceMe.Core.Tests.Plots;

namespace ReplaceMe.Core.Tests.Cli;

public class DemoCommandTests
{

    [Fact]
    public void A_tiny_demo_writes_models_report_and_real_plots()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("demo");
        var (code, stdout, stderr) = CliRun.Run("demo", "--model-source", Stories15MTestModel.FilesDir, "--out", outDir,
            "--calibration-stories", "16", "--held-out-stories", "8", "--story-tokens", "48", "--max-blocks", "1");
        Assert.True(code == 0, stderr + stdout);

        // The retention table lists the original and the three pruned variants, and the sample generations follow.
        foreach (var label in new[] { "original", "lstsq-1", "cosine-1", "identity-1" })
            Assert.Contains(label, stdout, StringComparison.Ordinal);
        Assert.Contains("Once upon a time", stdout, StringComparison.Ordinal);

        foreach (var model in new[] { "original", "lstsq-1", "cosine-1", "identity-1" })
            Assert.True(File.Exists(Path.Combine(outDir, "models", model, "config.json")), model);
        var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "models", "lstsq-1", "replaceme.json")))!;
        Assert.NotNull(provenance);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "models", "lstsq-1", "config.json")))!;
        Assert.Equal(5, (int)config["num_hidden_layers"]!);

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal(3, report["runs"]!.AsArray().Count);
        Assert.Contains("## Retention", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.Ordinal);

        var plots = Path.Combine(outDir, "plots");
        foreach (var png in new[] { "distance-heatmap.png", "distance-profile-n1.png", "loss-cosine-1.png", "retention-held-out-stories-ppl.png" })
            PlotWriterTests.AssertValidPng(Path.Combine(plots, png));

        // Nothing half-written beside the output folder.
        Assert.DoesNotContain(Directory.GetDirectories(dir.Path), d => Path.GetFileName(d).StartsWith(".demo", StringComparison.Ordinal));
    }

    [Fact]
    public void An_existing_output_folder_is_refused_without_overwrite()
    {
        using var dir = TestPaths.NewTempDir();
        var (code, _, stderr) = CliRun.Run("demo", "--model-source", Stories15MTestModel.FilesDir, "--out", dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("--overwrite", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
