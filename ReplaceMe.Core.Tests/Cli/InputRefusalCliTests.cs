using ReplaceMe.Core.Tests.Runtime;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>
/// The CLI turns the input refusals into exactly one <c>error:</c> line: a FIFO config.json, a key named twice, an
/// added-token id out of range, a corrupt Parquet calibration file, a FIFO calibration file.
/// </summary>
public class InputRefusalCliTests
{
    /// <summary>A copy of stories15M's small files (config, tokenizer) with the weights linked, so a test may spoil one file.</summary>
    private static string ModelCopy(TempDir dir)
    {
        var model = dir.Combine("model");
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(Stories15MTestModel.Shared.ModelDir))
        {
            var target = Path.Combine(model, Path.GetFileName(file));
            if (file.EndsWith(".safetensors", StringComparison.Ordinal)) File.CreateSymbolicLink(target, file);
            else File.Copy(file, target);
        }
        return model;
    }

    [Fact]
    public void A_fifo_config_json_is_one_error_line_not_a_hang()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = TestPaths.NewTempDir();
        var model = ModelCopy(dir);
        File.Delete(Path.Combine(model, "config.json"));
        InputFileTests.MakeFifo(Path.Combine(model, "config.json"));
        var r = CliRun.RunWithin(TimeSpan.FromSeconds(60), "generate", "--model", model, "--prompt", "Once", "-n", "2");
        CliRun.AssertOneLineError(r, "is a FIFO (named pipe)");
        Assert.Equal(1, r.ExitCode); // not 130: it did not wait for a writer until cancelled
    }

    [Fact]
    public void A_key_named_twice_in_config_json_is_one_error_line_naming_the_key()
    {
        using var dir = TestPaths.NewTempDir();
        var model = ModelCopy(dir);
        var config = Path.Combine(model, "config.json");
        var text = File.ReadAllText(config).TrimEnd().TrimEnd('}') + ", \"num_hidden_layers\": 2}";
        File.WriteAllText(config, text);
        CliRun.AssertOneLineError(CliRun.Run("generate", "--model", model, "--prompt", "Once", "-n", "2"), "key 'num_hidden_layers' appears twice");
    }

    [Fact]
    public void A_negative_added_token_id_is_one_error_line_naming_the_token_and_the_id()
    {
        using var dir = TestPaths.NewTempDir();
        var model = ModelCopy(dir);
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), """{"added_tokens_decoder": {"-3": {"content": "<bad>", "special": true}}}""");
        CliRun.AssertOneLineError(CliRun.Run("tokenize", "--model", model, "--text", "Once"), "added token '<bad>' has id -3");
    }

    [Fact]
    public void Corrupt_or_fifo_calibration_files_are_one_error_line_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var parquet = dir.Combine("calibration.parquet");
        File.WriteAllBytes(parquet, [.. "PAR1"u8, 0x15, 0xFF, 0xFF, 0xFF, 0x01, .. "PAR1"u8]);
        string[] prune = ["prune", "--model", Stories15MTestModel.Shared.ModelDir, "--blocks", "1", "--out", dir.Combine("out")];
        CliRun.AssertOneLineError(CliRun.Run([.. prune, "--calibration", parquet]), parquet);
        Assert.False(Directory.Exists(dir.Combine("out")));
        if (OperatingSystem.IsWindows()) return;
        var fifo = dir.Combine("calibration.txt");
        InputFileTests.MakeFifo(fifo);
        var r = CliRun.RunWithin(TimeSpan.FromSeconds(60), [.. prune, "--calibration", fifo]);
        CliRun.AssertOneLineError(r, "is a FIFO");
        Assert.Equal(1, r.ExitCode);
    }
}
