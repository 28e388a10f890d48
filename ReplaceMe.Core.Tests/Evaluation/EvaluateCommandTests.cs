using System.Text.Json.Nodes;
using ReplaceMe.Cli;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary><c>replaceme evaluate</c> in-process on stories15M and on a copy with blocks 2 and 3 dropped (identity pruning done on the files).</summary>
public class EvaluateCommandTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    /// <summary>Copies the model folder without blocks [2, 4): later blocks renumbered, config shortened.</summary>
    private static void WriteIdentityPruned(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var f in new[] { "tokenizer.model", "tokenizer_config.json" })
            if (File.Exists(Path.Combine(source, f))) File.Copy(Path.Combine(source, f), Path.Combine(target, f));
        var config = ModelConfigJson.Load(Path.Combine(source, "config.json")).WithBlocksRemoved(2, 4);
        File.WriteAllText(Path.Combine(target, "config.json"), ModelConfigJson.ToJson(config).ToJsonString());
        using var reader = SafetensorsReader.Open(source);
        var kept = new List<KeyValuePair<string, TorchSharp.torch.Tensor>>();
        foreach (var name in reader.Names)
        {
            var match = System.Text.RegularExpressions.Regex.Match(name, @"^model\.layers\.(\d+)\.(.*)$");
            if (!match.Success) { kept.Add(KeyValuePair.Create(name, reader.Read(name))); continue; }
            int layer = int.Parse(match.Groups[1].Value);
            if (layer is 2 or 3) continue;
            kept.Add(KeyValuePair.Create($"model.layers.{(layer > 3 ? layer - 2 : layer)}.{match.Groups[2].Value}", reader.Read(name)));
        }
        SafetensorsWriter.Write(target, kept);
        foreach (var (_, t) in kept) t.Dispose();
    }

    [Fact]
    public void Evaluate_with_baseline_prints_the_retention_table_and_writes_json()
    {
        using var dir = TestPaths.NewTempDir();
        var pruned = dir.Combine("stories15M-identity-2");
        WriteIdentityPruned(Fixture.ModelDir, pruned);
        var json = dir.Combine("report.json");

        var (code, output, err) = CliRun.Run("evaluate", "--model", pruned, "--baseline", Fixture.ModelDir, "--text", Fixture.StoriesFile, "--json", json);
        Assert.True(code == 0, err);
        var lines = output.Split('\n');
        Assert.Matches(@"^model\s+stories ppl ↓ \(n=\d+\)\s+stories-lastword acc \(n=\d+\)\s+stories-lastword ppl ↓ \(n=\d+\)\s+Avg\s+RP$", lines[0]);
        Assert.Matches(@"^stories15M\s+\d+\.\d\d ± \d+\.\d\d\s+\d+\.\d ± \d+\.\d\s+\d+\.\d\d ± \d+\.\d\d\s+\d+\.\d ± \d+\.\d\s+100\.0 %$", lines[1]);
        Assert.Matches(@"^stories15M-identity-2\s+\d+\.\d\d ± \d+\.\d\d\s+\d+\.\d ± \d+\.\d \(\d+\.\d %\)\s+\d+\.\d\d ± \d+\.\d\d\s+\d+\.\d ± \d+\.\d\s+\d+\.\d ± \d+\.\d %$", lines[2]);
        Assert.StartsWith("± is one standard error", lines[3], StringComparison.Ordinal);

        var report = JsonNode.Parse(File.ReadAllText(json))!["models"]!.AsArray();
        double originalPpl = (double)report[0]!["scores"]![0]!["value"]!;
        double prunedPpl = (double)report[1]!["scores"]![0]!["value"]!;
        Assert.True(prunedPpl > originalPpl, $"removing two blocks should raise perplexity ({originalPpl} -> {prunedPpl})");
        Assert.True((double)report[1]!["retained_percent"]! < 100);
    }

    [Fact]
    public void Bad_task_specs_and_files_give_one_line_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var (code, _, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--task", "nosuchformat=" + Fixture.StoriesFile);
        Assert.Equal(1, code);
        Assert.StartsWith("error: --task nosuchformat=", err);
        Assert.Single(err.TrimEnd().Split('\n'));

        var broken = TaskReference.Write(dir, "piqa.jsonl", """{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}""", "{oops");
        (code, _, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--task", "piqa=" + broken);
        Assert.Equal(1, code);
        Assert.Contains("piqa.jsonl:2: malformed JSON", err);

        (code, _, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir);
        Assert.Equal(1, code);
        Assert.Contains("Nothing to evaluate", err);
    }

    [Fact]
    public void Evaluate_without_baseline_scores_a_multiple_choice_task()
    {
        using var dir = TestPaths.NewTempDir();
        var task = TaskReference.Write(dir, "mine.jsonl",
            """{"context": "Once upon a time, there was a little girl named Lily. She loved to play", "choices": ["outside in the sun.", "quantum chromodynamics."], "label": 0}""",
            """{"context": "Tom was sad because he lost his", "choices": ["toy.", "mortgage refinancing."], "label": 0}""",
            """{"context": "The cat said", "choices": ["meow.", "the derivative is zero."], "label": 0}""");
        var (code, output, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--task", "mine:mc=" + task, "--batch-size", "2");
        Assert.True(code == 0, err);
        Assert.Matches(@"^model\s+mine acc \(n=3\)\s+Avg\s+RP", output);
        // stories15M prefers the story continuation in all three items: acc 100.0, Avg 100.0.
        Assert.Matches(@"\nstories15M\s+100\.0 ± 0\.0\s+100\.0 ± 0\.0\s+100\.0 %", output);
    }
}
