using System.Text.Json.Nodes;
using ReplaceMe.Core.Tests.Llama2c;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>
/// Options that the model's config decides are rejected right after the model is loaded, before any calibration text
/// is read or generated and before any model is evaluated. Each test makes the late path observable: a calibration
/// file that does not exist (reading it first would report the file instead), generation far longer than the
/// time limit (the run would be cancelled, exit 130), or a progress line printed before the error.
/// </summary>
public class EarlyErrorTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private const string MissingCalibration = "/nonexistent/calibration.txt";

    [Theory]
    [InlineData("prune", "Cannot remove 6 consecutive blocks", "--blocks", "6")]
    [InlineData("prune", "3 cuts of 2 blocks", "--blocks", "2", "--cuts", "3")]
    [InlineData("prune", "runs past the last block", "--blocks", "2", "--selector", "fixed", "--start", "5")]
    [InlineData("prune", "starts at block 0", "--blocks", "1", "--selector", "fixed", "--start", "0")]
    [InlineData("prune", "--max-length 4096 exceeds the model's context of 256", "--blocks", "1", "--max-length", "4096")]
    [InlineData("profile", "--blocks 6 is too large", "--blocks", "6")]
    public void Options_checked_against_the_config_fail_before_the_calibration_file_is_read(string verb, string fragment, params string[] rest)
    {
        var r = CliRun.Run([verb, "--model", Stories15MTestModel.Shared.ModelDir, "--calibration", MissingCalibration, .. rest]);
        CliRun.AssertOneLineError(r, fragment);
        Assert.DoesNotContain("calibration.txt", r.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("prune", "Cannot remove 6 consecutive blocks", "--blocks", "6")]
    [InlineData("profile", "--blocks 6 is too large", "--blocks", "6")]
    [InlineData("prune", "--generated-tokens 300 does not fit the model's context of 256", "--blocks", "1", "--generated-tokens", "300")]
    public void Options_checked_against_the_config_fail_before_calibration_text_is_generated(string verb, string fragment, params string[] rest)
    {
        // 100 000 stories would take hours: an error after generation would come as a cancellation (exit 130).
        var r = CliRun.RunWithin(Limit, [verb, "--model", Stories15MTestModel.Shared.ModelDir, "--self-generated", "100000", .. rest]);
        CliRun.AssertOneLineError(r, fragment);
        Assert.Equal(1, r.ExitCode);
    }

    [Theory]
    [InlineData("--max-blocks 5 ", "--max-blocks must be in 1..4 for a 6-block model", "--max-blocks", "5")]
    [InlineData("--story-tokens 300", "--story-tokens 300 does not fit the model's context of 256", "--story-tokens", "300")]
    public void The_demo_checks_its_setting_against_the_model_before_generating_stories(string _, string fragment, params string[] rest)
    {
        using var dir = TestPaths.NewTempDir();
        var r = CliRun.RunWithin(Limit, ["demo", "--model-source", Stories15MTestModel.FilesDir, "--out", dir.Combine("demo"), "--calibration-stories", "100000", .. rest]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: ", r.Error, StringComparison.Ordinal);
        Assert.Contains(fragment, r.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Generating", r.Out, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path)); // no output folder, no half-written sibling
    }

    [Fact]
    public void Evaluate_checks_both_folders_before_evaluating_the_baseline()
    {
        using var dir = TestPaths.NewTempDir();
        var text = dir.Combine("stories.txt");
        File.WriteAllText(text, "Once upon a time there was a cat.\n\nThe dog ran to the park and played all day.\n");
        // The baseline's evaluation would print "evaluating …" on stderr before the missing model was noticed.
        CliRun.AssertOneLineError(CliRun.Run("evaluate", "--baseline", Stories15MTestModel.Shared.ModelDir, "--model", dir.Combine("missing"), "--text", text), "missing");
        CliRun.AssertOneLineError(CliRun.Run("evaluate", "--baseline", Stories15MTestModel.Shared.ModelDir, "--model", Stories15MTestModel.Shared.ModelDir, "--text", text, "--max-length", "4096"),
            "--max-length 4096 exceeds the context");
    }

    [Fact]
    public void Too_few_calibration_tokens_name_the_flag_and_the_flag_fits_with_a_ridge()
    {
        using var dir = TestPaths.NewTempDir();
        // 2 documents of at most 9 tokens: far fewer tokens than the hidden size 288.
        string[] args = ["prune", "--model", Stories15MTestModel.Shared.ModelDir, "--self-generated", "2", "--generated-tokens", "8", "--blocks", "1", "--seed", "1"];
        var refused = CliRun.Run(args);
        CliRun.AssertOneLineError(refused, "--allow-underdetermined");

        var json = dir.Combine("prov.json");
        var allowed = CliRun.Run([.. args, "--allow-underdetermined", "--json", json]);
        Assert.True(allowed.ExitCode == 0, allowed.Error);
        Assert.Contains("blocks 6 -> 5", allowed.Out, StringComparison.Ordinal);
        var provenance = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.True((bool)provenance["estimator"]!["settings"]!["allow_underdetermined"]!);
        Assert.Contains(provenance["removed"]![0]!["estimator_report"]!["notes"]!.AsArray(), n => ((string)n!).Contains("underdetermined", StringComparison.Ordinal));

        CliRun.AssertOneLineError(CliRun.Run([.. args, "--allow-underdetermined", "--estimator", "cosine"]), "--allow-underdetermined is only used with --estimator lstsq");
    }
}
