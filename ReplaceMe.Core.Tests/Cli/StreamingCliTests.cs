using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary><c>prune</c> and <c>profile</c> with <c>--max-memory</c> / <c>--streaming</c> on stories15M (6 blocks, 60 MB of float32).</summary>
public class StreamingCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    private static string CalibrationFile(TempDir dir)
    {
        var file = dir.Combine("calib.txt");
        File.WriteAllText(file, string.Join("\n\n", Enumerable.Range(0, 16).Select(i =>
            $"Once upon a time, a little dog number {i} found a red ball in the park. He ran to his friend the cat and they played all day until the sun went down.")));
        return file;
    }

    [Fact]
    public void Prune_under_a_small_max_memory_streams_prints_block_progress_and_saves_the_same_model_as_in_memory()
    {
        using var dir = TestPaths.NewTempDir();
        var calib = CalibrationFile(dir);
        string[] common = ["prune", "--model", Fixture.ModelDir, "--calibration", calib, "--blocks", "2", "--estimator", "lstsq", "--batch-size", "4"];
        var (code, output, err) = CliRun.Run([.. common, "--max-memory", "50MB", "--spill-dir", dir.Combine("spill"), "--out", dir.Combine("streamed")]);
        Assert.True(code == 0, err);
        Assert.Contains("model: streamed block by block", output);
        Assert.Contains("block 6/6: calibration pass, ETA 0s", output);
        Assert.Contains("blocks 6 -> 4", output);
        (code, var memoryOutput, err) = CliRun.Run([.. common, "--out", dir.Combine("memory")]);
        Assert.True(code == 0, err);
        Assert.DoesNotContain("streamed", memoryOutput);
        string Removed(string text) => text.Split('\n').First(l => l.StartsWith("removed [", StringComparison.Ordinal));
        Assert.Equal(Removed(memoryOutput), Removed(output));
        using var a = SafetensorsReader.Open(dir.Combine("streamed"));
        using var b = SafetensorsReader.Open(dir.Combine("memory"));
        Assert.Equal(b.Names, a.Names);
        foreach (var name in a.Names.Where(n => !n.Contains("down_proj", StringComparison.Ordinal)))
        {
            using var x = a.Read(name);
            using var y = b.Read(name);
            Assert.True(x.equal(y).all().item<bool>(), name);           // untouched tensors: copies of the same source
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Combine("spill")));
    }

    [Fact]
    public void Streaming_options_are_parsed_and_what_a_streamed_model_cannot_do_is_refused_up_front()
    {
        using var dir = TestPaths.NewTempDir();
        var (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--calibration", CalibrationFile(dir), "--blocks", "1", "--max-memory", "lots");
        Assert.Equal(1, code);
        Assert.Contains("--max-memory must be a positive size", err);
        (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--self-generated", "4", "--blocks", "1", "--streaming");
        Assert.Equal(1, code);
        Assert.Contains("--self-generated needs it in memory", err);
        (code, _, err) = CliRun.Run("prune", "--model", Fixture.ModelDir, "--calibration", CalibrationFile(dir), "--blocks", "1", "--max-memory", "10MB", "--gguf", dir.Combine("m.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("--gguf writes from memory", err);
        (code, _, err) = CliRun.Run("profile", "--model", Fixture.ModelDir, "--calibration", CalibrationFile(dir), "--blocks", "1", "--spill-dir", dir.Combine("s"));
        Assert.Equal(1, code);
        Assert.Contains("--spill-dir is used only when the model is streamed", err);
        var (pcode, pout, perr) = CliRun.Run("profile", "--model", Fixture.ModelDir, "--calibration", CalibrationFile(dir), "--blocks", "2", "--streaming");
        Assert.True(pcode == 0, perr);
        Assert.Contains("block 6/6: calibration pass", pout);
        Assert.Contains("<- smallest", pout);
    }

    [Fact]
    public void Evaluate_streamed_prints_block_progress_and_the_same_table_as_in_memory()
    {
        using var dir = TestPaths.NewTempDir();
        var text = CalibrationFile(dir);
        var spill = Directory.CreateDirectory(dir.Combine("spill")).FullName;
        var (code, memory, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--text", text, "--batch-size", "4");
        Assert.True(code == 0, err);
        // 40 MB is below the working set: the evaluation's hidden states spill to --spill-dir and the result is the same.
        (code, var streamed, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--text", text, "--batch-size", "4", "--max-memory", "40MB", "--spill-dir", spill);
        Assert.True(code == 0, err);
        Assert.Contains("model: streamed block by block", err);
        Assert.Contains("block 6/6: perplexity of calib, ETA ", err);                    // block-major, per corpus and task
        Assert.Contains("block 6/6: cloze task calib-lastword, ETA ", err);
        Assert.Contains("LM head chunk 1/1: perplexity of calib, ETA ", err);
        Assert.Contains("hidden states spill to disk", err);
        Assert.Empty(Directory.EnumerateFileSystemEntries(spill));
        Assert.Equal(memory, streamed);
        (code, _, err) = CliRun.Run("evaluate", "--model", Fixture.ModelDir, "--text", text, "--spill-dir", spill);
        Assert.Equal(1, code);
        Assert.Contains("--spill-dir is used only when a model is streamed", err);
    }
}
