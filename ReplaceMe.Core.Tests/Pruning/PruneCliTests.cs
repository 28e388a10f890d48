using System.Text.Json.Nodes;
using ReplaceMe.Cli;
using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary>The <c>profile</c> and <c>prune</c> verbs run in-process on the real stories15M.</summary>
public class PruneCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Profile_prints_the_distance_table_and_writes_json()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.Combine("profile.json");
        var (code, output, err) = CliRun.Run("profile", "--model", Fixture.ModelDir, "--self-generated", "8", "--generated-tokens", "24",
            "--blocks", "2", "--json", json);
        Assert.True(code == 0, err);
        foreach (var cut in new[] { "[1, 3)", "[2, 4)", "[3, 5)", "[4, 6)" }) Assert.Contains(cut, output);
        Assert.DoesNotContain("[5, 7)", output);
        Assert.Contains("<- smallest", output);
        var doc = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(6, (int)doc["block_count"]!);
        var row = doc["by_length"]!["2"]!.AsArray();
        Assert.Equal(5, row.Count);
        Assert.Null(row[4]);                                   // [5, 7) does not fit
        Assert.InRange((double)row[0]!, 0.0, 1.0);
    }

    [Fact]
    public void Prune_prints_the_cut_and_writes_the_folder_once()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("pruned");
        string[] args = ["prune", "--model", Fixture.ModelDir, "--self-generated", "24", "--generated-tokens", "48",
            "--blocks", "1", "--estimator", "lstsq", "--out", outDir, "--seed", "3"];
        var (code, output, err) = CliRun.Run(args);
        Assert.True(code == 0, err);
        Assert.Contains("removed [", output);
        Assert.Contains("lstsq:", output);
        Assert.Contains("blocks 6 -> 5", output);
        var prov = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "replaceme.json")))!;
        Assert.Equal(5, (int)prov["num_hidden_layers"]!);
        Assert.Contains("self-generated", (string)prov["calibration"]!["source"]!);
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.model")));

        (code, _, err) = CliRun.Run(args);
        Assert.Equal(1, code);
        Assert.StartsWith("error:", err);
        Assert.Contains("--overwrite", err);
    }

    [Fact]
    public void Prune_from_a_text_file_with_a_fixed_cut_and_identity()
    {
        using var dir = TestPaths.NewTempDir();
        var file = dir.Combine("calib.txt");
        File.WriteAllLines(file, Enumerable.Range(0, 12).Select(i => $"Once upon a time, a little dog number {i} found a red ball in the park."));
        var json = dir.Combine("prov.json");
        var (code, output, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--calibration", file, "--lines",
            "--blocks", "2", "--selector", "fixed", "--start", "2", "--estimator", "identity", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("removed [2, 4) (original indices; applied as [2, 4)), folded into block 1", output);
        var prov = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("identity", (string)prov["removed"]![0]!["transform"]!);
        Assert.Contains("calib.txt: 12 documents", (string)prov["calibration"]!["source"]!);
    }

    [Theory]
    [InlineData("--blocks", "1")]                                                        // no calibration source
    [InlineData("--blocks", "1", "--self-generated", "4", "--calibration", "x.txt")]     // both sources
    [InlineData("--blocks", "1", "--self-generated", "4", "--selector", "fixed")]        // fixed without --start
    [InlineData("--blocks", "0", "--self-generated", "4")]
    [InlineData("--blocks", "1", "--self-generated", "4", "--estimator", "svd")]
    public void Bad_arguments_fail_before_any_work(params string[] rest)
    {
        var (code, _, err) = CliRun.Run(["prune", "--model", Fixture.ModelDir, .. rest]);
        Assert.NotEqual(0, code);
        Assert.False(string.IsNullOrWhiteSpace(err));
    }

    [Fact]
    public void Too_many_blocks_and_missing_files_are_one_line_errors()
    {
        var (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "4", "--generated-tokens", "8", "--blocks", "6");
        Assert.Equal(1, code);
        Assert.StartsWith("error:", err);
        Assert.Contains("6 blocks", err);
        (code, _, err) = CliRun.Run("profile", "--model", Fixture.ModelDir, "--calibration", "/nonexistent/calib.jsonl");
        Assert.Equal(1, code);
        Assert.Contains("calib.jsonl", err);
    }

    [Fact]
    public void An_out_path_that_is_a_file_is_refused_before_any_work()
    {
        using var dir = TestPaths.NewTempDir();
        var file = dir.Combine("pruned");
        File.WriteAllText(file, "not a folder");
        var r = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "100000", "--blocks", "1", "--out", file);
        CliRun.AssertOneLineError(r, "is an existing file");
        Assert.Equal("not a folder", File.ReadAllText(file));
    }

    [Fact]
    public async Task The_json_file_is_written_whole_or_not_at_all()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("prov.json");
        await ReplaceMe.Cli.CliFiles.WriteAllTextAtomicAsync(path, "{\"a\": 1}\n", CancellationToken.None);
        Assert.Equal("{\"a\": 1}\n", File.ReadAllText(path));
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ReplaceMe.Cli.CliFiles.WriteAllTextAtomicAsync(path, "new", cancelled.Token));
        Assert.Equal("{\"a\": 1}\n", File.ReadAllText(path));                 // the old file is intact
        Assert.Equal(["prov.json"], Directory.GetFiles(dir.Path).Select(Path.GetFileName)); // no temporary left
    }
}
