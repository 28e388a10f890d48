using ReplaceMe.Cli;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>Imports stories15M once through the <c>import-llama2c</c> verb; the other verbs use the result.</summary>
public sealed class CliImportFixture : IDisposable
{
    private readonly TempDir _dir = TestPaths.NewTempDir();

    public CliImportFixture()
    {
        ModelDir = _dir.Combine("model");
        Import = CliRun.Run("import-llama2c", "--weights", Stories15MTestModel.Files.Weights,
            "--tokenizer", Stories15MTestModel.Files.TokenizerModel, "--out", ModelDir);
    }

    public string ModelDir { get; }

    public CliResult Import { get; }

    internal TempDir Dir => _dir;

    public void Dispose() => _dir.Dispose();
}

public sealed record CliResult(int ExitCode, string Out, string Error);

internal static class CliRun
{
    public static CliResult Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CliApp.RunAsync(args, stdout, stderr).GetAwaiter().GetResult();
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs the app and cancels it after <paramref name="timeout"/> (it then exits with 130, "error: cancelled"):
    /// for asserting that an error arrives before long work rather than after it.</summary>
    public static CliResult RunWithin(TimeSpan timeout, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var cancel = new CancellationTokenSource(timeout);
        int code = CliApp.RunAsync(args, stdout, stderr, cancel.Token).GetAwaiter().GetResult();
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Asserts the app's error convention: non-zero exit, nothing on stdout, one "error: " line on stderr.</summary>
    public static void AssertOneLineError(CliResult r, string fragment)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Out);
        var lines = r.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(fragment, lines[0]);
    }
}

public class CliVerbTests(CliImportFixture fixture) : IClassFixture<CliImportFixture>
{
    [Fact]
    public void A_tokenizer_larger_than_the_models_vocabulary_is_one_error_at_load()
    {
        // A tiny random model (vocab_size 50) beside stories15M's 32 000-piece tokenizer.
        using var dir = TestPaths.NewTempDir();
        var config = ReplaceMe.Core.Tests.Modeling.TinyModels.Llama(layers: 2);
        using (var model = ReplaceMe.Core.Modeling.DecoderModel.Create(config, seed: 1)) model.SavePretrained(dir.Combine("tiny"));
        File.Copy(Path.Combine(fixture.ModelDir, "tokenizer.model"), dir.Combine("tiny", "tokenizer.model"));
        File.Copy(Path.Combine(fixture.ModelDir, "tokenizer_config.json"), dir.Combine("tiny", "tokenizer_config.json"));
        var r = CliRun.Run("generate", "--model", dir.Combine("tiny"), "--prompt", "Once upon a time");
        CliRun.AssertOneLineError(r, "has 32000 tokens but config.json says vocab_size 50");
    }

    [Fact]
    public void Import_writes_the_folder_and_refuses_to_overwrite_without_the_flag()
    {
        Assert.Equal(0, fixture.Import.ExitCode);
        Assert.Equal("", fixture.Import.Error);
        Assert.Contains(fixture.ModelDir, fixture.Import.Out);
        Assert.True(File.Exists(Path.Combine(fixture.ModelDir, "model.safetensors")));
        var again = CliRun.Run("import-llama2c", "--weights", Stories15MTestModel.Files.Weights,
            "--tokenizer", Stories15MTestModel.Files.TokenizerModel, "--out", fixture.ModelDir);
        CliRun.AssertOneLineError(again, "already exists");
    }

    [Fact]
    public void Import_of_a_truncated_file_is_a_one_line_error()
    {
        var bin = fixture.Dir.Combine("cut.bin");
        File.WriteAllBytes(bin, File.ReadAllBytes(Stories15MTestModel.Files.Weights).AsSpan(0, 4096).ToArray());
        var r = CliRun.Run("import-llama2c", "--weights", bin, "--tokenizer", Stories15MTestModel.Files.TokenizerModel, "--out", fixture.Dir.Combine("cut-out"));
        CliRun.AssertOneLineError(r, "60816028");
    }

    [Fact]
    public void Tokenize_prints_the_ids_on_one_line()
    {
        var r = CliRun.Run("tokenize", "--model", fixture.ModelDir, "--text", "Once upon a time");
        Assert.Equal((0, "1 9038 2501 263 931" + Environment.NewLine, ""), (r.ExitCode, r.Out, r.Error));
        var noBos = CliRun.Run("tokenize", "--model", fixture.ModelDir, "--text", "Once upon a time", "--no-special-tokens");
        Assert.Equal("9038 2501 263 931" + Environment.NewLine, noBos.Out);
    }

    [Fact]
    public void Tokenize_on_a_folder_without_a_tokenizer_is_a_one_line_error()
    {
        var empty = fixture.Dir.Combine("empty");
        Directory.CreateDirectory(empty);
        CliRun.AssertOneLineError(CliRun.Run("tokenize", "--model", empty, "--text", "x"), "no tokenizer found");
    }

    [Fact]
    public void Generate_greedy_prints_the_prompt_and_the_readme_continuation()
    {
        var r = CliRun.Run("generate", "--model", fixture.ModelDir, "--prompt", "Once upon a time", "--max-new-tokens", "40");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Error);
        Assert.Equal(Stories15MTestModel.Greedy40 + Environment.NewLine, r.Out);
    }

    [Fact]
    public void Generate_sampling_is_reproducible_with_a_seed()
    {
        string[] args = ["generate", "--model", fixture.ModelDir, "--prompt", "Once upon a time", "-n", "12", "--temperature", "1.0", "--top-p", "0.9", "--seed", "7"];
        var first = CliRun.Run(args);
        var second = CliRun.Run(args);
        Assert.Equal(0, first.ExitCode);
        Assert.StartsWith("Once upon a time", first.Out);
        Assert.Equal(first.Out, second.Out);
    }

    [Theory]
    [InlineData(new[] { "generate", "--prompt", "x" }, "--model")]
    [InlineData(new[] { "generate", "--model", "MODEL", "--prompt", "x", "--top-p", "1.5" }, "--top-p must be in (0, 1]")]
    [InlineData(new[] { "generate", "--model", "MODEL", "--prompt", "x", "--temperature", "-1" }, "--temperature")]
    [InlineData(new[] { "generate", "--model", "MODEL", "--prompt", "x", "--max-new-tokens", "many" }, "many")]
    [InlineData(new[] { "generate", "--model", "/nonexistent/model", "--prompt", "x" }, "/nonexistent/model")]
    [InlineData(new[] { "import-llama2c", "--weights", "/nonexistent.bin", "--tokenizer", "t.model", "--out", "o" }, "/nonexistent.bin")]
    [InlineData(new[] { "no-such-verb" }, "no-such-verb")]
    public void Bad_input_gives_a_one_line_error_and_a_non_zero_exit(string[] args, string fragment)
    {
        var r = CliRun.Run(args.Select(a => a == "MODEL" ? fixture.ModelDir : a).ToArray());
        CliRun.AssertOneLineError(r, fragment);
    }

    [Theory]
    [InlineData("import-llama2c", "--weights")]
    [InlineData("generate", "--max-new-tokens")]
    [InlineData("tokenize", "--text")]
    public void Every_verb_has_help(string verb, string option)
    {
        var r = CliRun.Run(verb, "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains(option, r.Out);
    }
}
