using System.Text;
using System.Text.Json;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Writes a Hugging Face checkpoint folder that <c>transformers</c> can load: <c>config.json</c>, safetensors under
/// the given (canonical HF) tensor names, and every other top-level file of the source folder copied byte for byte.
/// </summary>
internal static class HfCheckpointFolder
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
    /// <param name="sourceDir">Folder the model was loaded from, or null. Its top-level files are copied except
    /// <c>config.json</c> and weights that the new tensors replace (<c>*.safetensors</c>, safetensors/bin indexes,
    /// <c>pytorch_model*</c>, <c>tf_model*</c>, <c>flax_model*</c>, <c>*.gguf</c>, <c>*.pth</c>); hidden files and
    /// subfolders (e.g. <c>original/</c> with the unmodified weights) are not copied.</param>
    /// <param name="options">Overwrite flag, shard size, storage dtype, extra files.</param>
    /// <param name="cancellationToken">Checked between tensors and files; cancelling leaves no target.</param>
    /// <exception cref="IOException">The target exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="DirectoryNotFoundException"><paramref name="sourceDir"/> does not exist.</exception>
    /// <exception cref="ArgumentException">An extra file name is not a plain file name or collides with a checkpoint file, or the dtype is not floating-point.</exception>
    /// <exception cref="UnsupportedModelException">A tensor dtype cannot be stored, or the config cannot be expressed as JSON of its family.</exception>
    public static void Save(string targetDir, ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> stateDict, string? sourceDir,
        SaveOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDir);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureLoaded();
        if (options.DType is ScalarType dt && !Precision.IsSupportedCompute(dt))
            throw new ArgumentException($"SaveOptions.DType must be Float32, Float16, BFloat16 or Float64, not {dt}.", nameof(options));
        foreach (var name in options.ExtraFiles.Keys) CheckExtraFileName(name);
        if (sourceDir is not null && !Directory.Exists(sourceDir))
            throw new DirectoryNotFoundException($"Source checkpoint folder '{sourceDir}' does not exist.");

        var savedConfig = options.DType is ScalarType d ? config with { TorchDtype = Precision.TorchDtypeName(d) } : config;
        var configJson = ModelConfigJson.ToJson(savedConfig).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

        using var output = OutputFolder.Create(targetDir, options.Overwrite, sourceDir is null ? null : [sourceDir]);
        if (sourceDir is not null)
        {
            foreach (var file in Directory.EnumerateFiles(sourceDir).Order(StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var name = Path.GetFileName(file);
                if (!IsReplacedBySave(name)) File.Copy(file, Path.Combine(output.Path, name));
            }
        }
        File.WriteAllText(Path.Combine(output.Path, ConfigFileName), configJson + "\n", Utf8NoBom);
        SafetensorsWriter.Write(output.Path, stateDict, options.MaxShardBytes, metadata: null, options.DType, cancellationToken);
        foreach (var (name, text) in options.ExtraFiles)
            File.WriteAllText(Path.Combine(output.Path, name), text, Utf8NoBom);
        cancellationToken.ThrowIfCancellationRequested();
        output.Commit();
    }

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

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

    private static void CheckExtraFileName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || Path.GetFileName(name) != name || name is "." or ".." || IsReplacedBySave(name))
            throw new ArgumentException(
                $"Extra file name '{name}' must be a plain file name that is not config.json, a weights file or hidden.", nameof(name));
    }
}
