using Microsoft.Extensions.Logging;
using System.Text;
using System.Text.Json;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Writes a Hugging Face checkpoint folder that <c>transformers</c> can load: <c>config.json</c>, safetensors under
/// the given (canonical HF) tensor names, and the source folder's companion files copied byte for byte.
/// </summary>
internal static partial class HfCheckpointFolder
{
    /// <summary>Name of the model config file.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>
    /// Saves a checkpoint into <paramref name="targetDir"/>, built in a temporary sibling and moved into place only when
    /// complete (see <see cref="OutputFolder"/>).
    /// </summary>
    /// <param name="targetDir">Folder to create.</param>
    /// <param name="config">Model config, written through <see cref="ModelConfigJson.ToJson"/>.</param>
    /// <param name="stateDict">Tensor name → tensor, under Hugging Face names.</param>
    /// <param name="sourceDir">Folder the model was loaded from, or null. Its companion files (tokenizer files,
    /// special tokens, generation config, chat template, license; see <see cref="IsCompanionFile"/>) are copied byte for
    /// byte when they are regular files that resolve inside the folder (or inside its Hub-cache repository); everything
    /// else (weights, other files, subfolders such as <c>original/</c>, links that leave the folder, FIFOs, devices) is
    /// left out and logged.</param>
    /// <param name="options">Overwrite flag, shard size, storage dtype, extra files.</param>
    /// <param name="logger">Receives one line per source file that is not copied, with the reason.</param>
    /// <param name="cancellationToken">Checked between tensors and files; cancelling leaves no target.</param>
    /// <exception cref="IOException">The target exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system lacks the space (checked before anything is written).</exception>
    /// <exception cref="DirectoryNotFoundException"><paramref name="sourceDir"/> does not exist.</exception>
    /// <exception cref="ArgumentException">An extra file name is not a plain file name or collides with a checkpoint file, or the dtype is not floating-point.</exception>
    /// <exception cref="UnsupportedModelException">A tensor dtype cannot be stored, or the config cannot be expressed as JSON of its family.</exception>
    public static void Save(string targetDir, ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> stateDict, string? sourceDir,
        SaveOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDir);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureLoaded();
        if (options.DType is ScalarType dt && !Precision.IsSupportedCompute(dt))
            throw new ArgumentException($"SaveOptions.DType must be Float32, Float16, BFloat16 or Float64, not {dt}.", nameof(options));
        foreach (var name in options.ExtraFiles.Keys) CheckExtraFileName(name);
        foreach (var name in options.ExtraTensorFiles.Keys) CheckExtraTensorFileName(name);
        if (sourceDir is not null && !Directory.Exists(sourceDir))
            throw new DirectoryNotFoundException($"Source checkpoint folder '{sourceDir}' does not exist.");

        var savedConfig = options.DType is ScalarType d ? config with { TorchDtype = Precision.TorchDtypeName(d) } : config;
        var configJson = ModelConfigJson.ToJson(savedConfig).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

        var weights = stateDict as IReadOnlyCollection<KeyValuePair<string, Tensor>> ?? [.. stateDict];
        DiskSpace.EnsureFits(targetDir, ExpectedBytes(StoredBytes(weights, options.DType), weights.Count, configJson, sourceDir, options), "the checkpoint");
        using var output = OutputFolder.Create(targetDir, options.Overwrite, sourceDir is null ? null : [sourceDir], logger);
        if (sourceDir is not null) CopyCompanionFiles(sourceDir, output.Path, logger, cancellationToken);
        File.WriteAllText(Path.Combine(output.Path, ConfigFileName), configJson + "\n", Utf8NoBom);
        SafetensorsWriter.Write(output.Path, weights, options.MaxShardBytes, metadata: null, options.DType, cancellationToken);
        foreach (var (name, text) in options.ExtraFiles)
            File.WriteAllText(Path.Combine(output.Path, name), text, Utf8NoBom);
        foreach (var (name, tensors) in options.ExtraTensorFiles)
            SafetensorsWriter.WriteSingleFile(Path.Combine(output.Path, name), tensors, new Dictionary<string, string>(), cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        output.Commit();
    }

    /// <summary>
    /// Copies the companion files of <paramref name="sourceDir"/> (see <see cref="CompanionProblem"/>) byte for byte into
    /// <paramref name="destination"/>; every other entry is skipped, and logged when it is not a file a save replaces.
    /// </summary>
    internal static void CopyCompanionFiles(string sourceDir, string destination, ILogger? logger, CancellationToken cancellationToken)
    {
        foreach (var file in Directory.EnumerateFileSystemEntries(sourceDir).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(file);
            if (IsReplacedBySave(name) || Directory.Exists(file)) continue;
            if (CompanionProblem(sourceDir, file) is { } problem)
            {
                if (logger is not null) LogNotCopied(logger, name, problem);
                continue;
            }
            File.Copy(file, Path.Combine(destination, name));
        }
    }

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// The companion files a save copies from the source folder: tokenizer files, special tokens, generation config,
    /// chat template, license and use policy. Anything else is left out (and logged).
    /// </summary>
    internal static bool IsCompanionFile(string name) =>
        name is "tokenizer.json" or "tokenizer.model" or "tokenizer_config.json" or "special_tokens_map.json"
            or "added_tokens.json" or "vocab.json" or "merges.txt" or "generation_config.json" or "chat_template.json"
            or "chat_template.jinja" or "USE_POLICY.md" or "NOTICE" or "NOTICE.txt"
        || name.StartsWith("LICENSE", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Why <paramref name="file"/> must not be copied, or null when it may. A companion file must be (or link to) a
    /// regular file that stays inside the model folder, or, for a Hugging Face Hub cache snapshot
    /// (<c>…/models--org--name/snapshots/&lt;rev&gt;</c>), inside that repository's cache folder (its <c>blobs/</c>).
    /// A link to a secret elsewhere, to <c>/dev/zero</c> or to a FIFO is never followed.
    /// </summary>
    internal static string? CompanionProblem(string sourceDir, string file)
    {
        if (!IsCompanionFile(Path.GetFileName(file))) return "not a tokenizer, generation-config, chat-template or license file";
        var info = new FileInfo(file);
        string resolved = info.LinkTarget is null ? info.FullName : info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(sourceDir));
        var snapshots = Path.GetDirectoryName(root);
        var allowed = Path.GetFileName(snapshots) == "snapshots" && Path.GetDirectoryName(snapshots) is { } repo ? repo : root;
        if (!resolved.StartsWith(allowed + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            return $"it resolves to '{resolved}', outside the model folder";
        if (Directory.Exists(resolved) || !IsRegularFile(resolved))
            return $"it is not a regular file of 1 byte to {MaxCompanionBytes} bytes (a FIFO, a device, empty or too large)";
        return null;
    }

    /// <summary>Largest companion file copied (tokenizer files are far smaller); a cap keeps a bad link from filling the disk.</summary>
    internal const long MaxCompanionBytes = 1L << 30;

    /// <summary>
    /// A regular, non-empty file of sane size. FIFOs and devices report length 0 without being opened (opening a FIFO
    /// would block until a writer appears), so they are left out without any read.
    /// </summary>
    private static bool IsRegularFile(string path) => new FileInfo(path) is { Exists: true, Length: > 0 and <= MaxCompanionBytes };

    [LoggerMessage(Level = LogLevel.Information, Message = "Not copying '{Name}' from the source folder: {Reason}")]
    private static partial void LogNotCopied(ILogger logger, string name, string reason);

    /// <summary>Files of a source folder that a save replaces or that would describe stale weights.</summary>
    internal static bool IsReplacedBySave(string name) =>
        name == ConfigFileName
        || name.StartsWith('.')
        || name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
        || name.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("pytorch_model", StringComparison.Ordinal)
        || name.StartsWith("tf_model", StringComparison.Ordinal)
        || name.StartsWith("flax_model", StringComparison.Ordinal)
        || name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)
        || name.EndsWith(".pth", StringComparison.OrdinalIgnoreCase);

    internal static void CheckExtraTensorFileName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || Path.GetFileName(name) != name || name.StartsWith('.')
            || !name.EndsWith(".safetensors", StringComparison.Ordinal) || name.StartsWith("model", StringComparison.Ordinal))
            throw new ArgumentException(
                $"Extra tensor file name '{name}' must be a plain, visible *.safetensors file name that does not start with 'model'.", nameof(name));
    }

    internal static void CheckExtraFileName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || Path.GetFileName(name) != name || name is "." or ".." || IsReplacedBySave(name))
            throw new ArgumentException(
                $"Extra file name '{name}' must be a plain file name that is not config.json, a weights file or hidden.", nameof(name));
    }
}
