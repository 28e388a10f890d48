using System.Text.Json.Nodes;
using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary><c>prune --heal-steps</c> and <c>sweep</c> run in-process on the real stories15M with a tiny text file.</summary>
public class HealSweepCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    private static string Calibration(TempDir dir)
    {
        var file = dir.Combine("calib.txt");
        File.WriteAllText(file, string.Join("\n\n", Enumerable.Range(0, 40).Select(i => $"Once upon a time, a little dog number {i} found a red ball in the park. He was happy.")));
        return file;
    }

    [Fact]
    public void Prune_heals_reports_held_out_scores_and_saves_the_loss_curve()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("healed");
        var (code, output, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--calibration", Calibration(dir), "--batch-size", "10",
            "--blocks", "1", "--heal-steps", "2", "--heal-lr", "1e-3", "--heal-held-out", "0.25", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("healed down_proj of block(s)", output);
        Assert.Contains("held-out (1 batches", output);
        var healing = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "healing.json")))!;
        Assert.Equal(2, healing["loss_curve"]!.AsArray().Count);
        Assert.Equal(2, (int)healing["steps"]!);
        var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!; // the same record, with the held-out scores
        Assert.Equal(1, (int)provenance["healing"]![0]!["held_out"]!["batches"]!);
        Assert.Equal((double)healing["held_out"]!["kl_after"]!, (double)provenance["healing"]![0]!["held_out"]!["kl_after"]!);
    }

    [Fact]
    public void Healing_and_sweep_options_are_checked_before_any_work()
    {
        var (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "4", "--blocks", "1", "--heal-lr", "1e-3");
        Assert.NotEqual(0, code);
        Assert.Contains("--heal-steps", err);
        (code, _, err) = CliRun.Run("sweep", "--model", Fixture.ModelDir, "--self-generated", "4", "--max-blocks", "1",
            "--target-ppl-increase", "10%", "--remove-fraction", "25%");
        Assert.NotEqual(0, code);
        Assert.Contains("at most one", err);
        (code, _, err) = CliRun.Run("sweep", "--model", Fixture.ModelDir, "--self-generated", "4", "--max-blocks", "1", "--estimators", "lstsq,nope");
        Assert.NotEqual(0, code);
        Assert.Contains("nope", err);
    }

    [Fact]
    public void Sweep_prints_the_table_recommends_and_plots()
    {
        using var dir = TestPaths.NewTempDir();
        var plot = dir.Combine("sweep.png");
        var (code, output, err) = CliRun.Run("sweep", "--model", Fixture.ModelDir, "--calibration", Calibration(dir), "--batch-size", "10",
            "--max-blocks", "1", "--estimators", "lstsq,identity", "--target-ppl-increase", "100000%", "--plot", plot);
        Assert.True(code == 0, err);
        Assert.Contains("| 1 | lstsq | [", output);
        Assert.Contains("| 1 | identity | [", output);
        Assert.Contains("recommended: n = 1", output);
        Assert.True(File.Exists(plot));
        Assert.True(File.Exists(Path.ChangeExtension(plot, ".svg")));
    }
}
