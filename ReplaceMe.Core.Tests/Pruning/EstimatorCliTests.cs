using System.Text.Json.Nodes;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>The CLI's estimator names and cosine options reach the library (checked through replaceme.json).</summary>
public class EstimatorCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Orthonormal_estimator_writes_its_structure_and_the_transforms_file()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("pruned");
        var (code, output, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "8", "--generated-tokens", "24",
            "--blocks", "1", "--estimator", "orthonormal", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("blocks 6 -> 5", output);
        var prov = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
        Assert.Equal("Orthonormal", (string)prov["estimator"]!["settings"]!["structure"]!);
        Assert.True(File.Exists(Path.Combine(outDir, SavedTransforms.FileName)));
    }

    [Fact]
    public void Cosine_options_reach_the_estimator()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.Combine("prov.json");
        var (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "8", "--generated-tokens", "24",
            "--blocks", "1", "--estimator", "cosine", "--cosine-init", "lstsq", "--cosine-paper", "--cosine-steps", "3", "--cosine-lr", "0.002", "--json", json);
        Assert.True(code == 0, err);
        var settings = JsonNode.Parse(File.ReadAllText(json))!["estimator"]!["settings"]!;
        Assert.Equal("LeastSquares", (string)settings["init"]!);
        Assert.Equal("Constant", (string)settings["schedule"]!);
        Assert.Equal(3, (int)settings["steps"]!);
        Assert.Equal(0.002, (double)settings["learning_rate"]!);
        var report = JsonNode.Parse(File.ReadAllText(json))!["removed"]![0]!["estimator_report"]!;
        Assert.Equal(3, report["loss_curve"]!.AsArray().Count); // 3 steps, one window each
    }

    [Fact]
    public void Cosine_lbfgs_options_reach_the_estimator()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.Combine("prov.json");
        var (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "8", "--generated-tokens", "24",
            "--blocks", "1", "--estimator", "cosine", "--cosine-loss", "exact", "--cosine-steps", "4", "--json", json);
        Assert.True(code == 0, err);
        var prov = JsonNode.Parse(File.ReadAllText(json))!;
        var settings = prov["estimator"]!["settings"]!;
        Assert.Equal("Lbfgs", (string)settings["optimizer"]!);
        Assert.Equal("Exact", (string)settings["loss"]!);
        Assert.Equal(4, (int)settings["max_iterations"]!);
        Assert.Null(settings["learning_rate"]); // Adam's settings are not recorded for L-BFGS
        Assert.InRange(prov["removed"]![0]!["estimator_report"]!["loss_curve"]!.AsArray().Count, 2, 5); // start + ≤ 4 iterations
    }

    [Theory]
    [InlineData("--estimator", "cosine", "--cosine-lr", "0.001")]
    [InlineData("--estimator", "cosine", "--cosine-paper", "--cosine-optimizer", "lbfgs")]
    [InlineData("--estimator", "cosine", "--cosine-optimizer", "sgd")]
    [InlineData("--estimator", "lstsq", "--cosine-loss", "exact")]
    [InlineData("--estimator", "lstsq", "--cosine-init", "lstsq")]
    [InlineData("--estimator", "diag", "--cosine-steps", "10")]
    [InlineData("--estimator", "orthonormal", "--ridge", "1")]
    [InlineData("--estimator", "cosine", "--cosine-init", "zeros")]
    [InlineData("--estimator", "cosine", "--cosine-lr", "0")]
    public void Options_of_another_estimator_or_out_of_range_fail_before_any_work(params string[] rest)
    {
        var (code, _, err) = CliRun.Run(["prune", "--model", Fixture.ModelDir, "--blocks", "1", "--self-generated", "4", .. rest]);
        Assert.NotEqual(0, code);
        Assert.False(string.IsNullOrWhiteSpace(err));
    }
}
