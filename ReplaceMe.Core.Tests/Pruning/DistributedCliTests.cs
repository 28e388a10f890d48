using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tests.Cli;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

/// <summary><c>calibrate</c> on calibration shards, then <c>prune --from-stats</c>, against one <c>prune</c> on all the data (stories15M).</summary>
public class DistributedCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Calibrate_on_shards_then_prune_from_stats_equals_one_prune_on_all_data()
    {
        using var dir = TestPaths.NewTempDir();
        var stories = Fixture.Stories.Take(12).ToList();
        var all = dir.Combine("all.txt");
        File.WriteAllText(all, string.Join("\n\n", stories) + "\n");
        var parts = new[] { stories.Take(5), stories.Skip(5) }.Select((s, i) =>
        {
            var path = dir.Combine($"part-{i}.txt");
            File.WriteAllText(path, string.Join("\n\n", s) + "\n");
            return path;
        }).ToList();

        var stats = new List<string>();
        var tokens = new List<long>();
        foreach (var (part, i) in parts.Select((p, i) => (p, i)))
        {
            var file = dir.Combine($"stats-{i}.safetensors");
            var (c, o, e) = CliRun.Run("calibrate", "--model", Fixture.ModelDir, "--calibration", part, "--cut", "2:4", "--out", file);
            Assert.True(c == 0, e);
            Assert.Contains("cut [2, 4): angular distance", o);
            tokens.Add(long.Parse(System.Text.RegularExpressions.Regex.Match(o, @"sequences, (\d+) tokens").Groups[1].Value));
            stats.Add(file);
        }
        var fromStats = dir.Combine("from-stats");
        var (code, output, err) = CliRun.Run(["prune", "--model", Fixture.ModelDir, "--from-stats", .. stats, "--out", fromStats]);
        Assert.True(code == 0, err);
        Assert.Contains("merged 2 statistics file(s): cut [2, 4)", output);

        var single = dir.Combine("single");
        (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--calibration", all, "--selector", "fixed", "--start", "2",
            "--blocks", "2", "--out", single);
        Assert.True(code == 0, err);

        using var a = SafetensorsReader.Open(fromStats);
        using var b = SafetensorsReader.Open(single);
        Assert.Equal(b.Names.ToList(), a.Names.ToList());
        foreach (var name in a.Names)
        {
            using var x = a.Read(name, ScalarType.Float64);
            using var y = b.Read(name, ScalarType.Float64);
            double scale = y.abs().max().item<double>();
            double diff = PipelineFixtures.MaxAbsDiff(x, y);
            // Untouched tensors are copies of the source in both; the folded one agrees to float32 rounding of a T equal to ~1e-6.
            Assert.True(name == "model.layers.1.mlp.down_proj.weight" ? diff <= 1e-6 * scale : diff == 0, $"{name}: {diff}");
        }
        var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(fromStats, "replaceme.json")))!;
        Assert.Equal(2, (int)provenance["removed"]![0]!["start"]!);
        // Provenance of --from-stats: each file by name, SHA-256 (of its bytes, hashed here) and the token count calibrate
        // printed; the model's fingerprint; the cut; the estimator; totals equal to what one prune on all the data counted.
        var files = provenance["statistics_files"]!.AsArray();
        Assert.Equal(stats.Select(Path.GetFileName), files.Select(f => (string?)f!["name"]));
        Assert.Equal(stats.Select(f => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))), files.Select(f => (string?)f!["sha256"]));
        Assert.Equal(tokens, files.Select(f => (long)f!["tokens"]!));
        Assert.Equal(ReplaceMe.Core.Modeling.ModelIdentity.Of(Fixture.ModelDir), (string?)provenance["model_identity"]);
        Assert.Equal((4, 6, 4), ((int)provenance["removed"]![0]!["end"]!, (int)provenance["original_num_hidden_layers"]!, (int)provenance["num_hidden_layers"]!));
        Assert.Equal("lstsq", (string?)provenance["estimator"]!["name"]);
        Assert.False((bool)provenance["estimator"]!["settings"]!["allow_underdetermined"]!);
        var singleProvenance = JsonNode.Parse(File.ReadAllText(Path.Combine(single, "replaceme.json")))!;
        Assert.Equal((long)singleProvenance["calibration"]!["tokens"]!, (long)provenance["calibration"]!["tokens"]!);
        Assert.Equal(tokens.Sum(), (long)provenance["calibration"]!["tokens"]!);

        // Statistics of another cut are refused, naming what differs.
        var other = dir.Combine("stats-other.safetensors");
        Assert.Equal(0, CliRun.Run("calibrate", "--model", Fixture.ModelDir, "--calibration", parts[0], "--cut", "3:5", "--out", other).ExitCode);
        (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--from-stats", stats[0], other, "--out", dir.Combine("bad"));
        Assert.Equal(1, code);
        Assert.Contains("cut differs", err);
        Assert.False(Directory.Exists(dir.Combine("bad")));
        (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--from-stats", stats[0], "--blocks", "2", "--out", dir.Combine("bad"));
        Assert.Equal(1, code);
        Assert.Contains("--blocks is not used with --from-stats", err);
    }
}
