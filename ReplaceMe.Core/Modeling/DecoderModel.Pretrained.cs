using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

public sealed partial class DecoderModel
{
    private const string ConfigFileName = "config.json";
    private string? _sourceDirectory;

    /// <summary>The folder this model was loaded from (its tokenizer and generation files travel with saves), if any.</summary>
    public string? SourceDirectory => _sourceDirectory;

    /// <summary>
    /// Loads a Hugging Face checkpoint folder: <c>config.json</c> plus <c>model.safetensors</c> or a sharded
    /// <c>model.safetensors.index.json</c>. Tensors are read one at a time from memory-mapped files and converted to the
    /// compute dtype (bf16/f16 are upcast to float32 by default).
    /// </summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="options">Device and compute dtype; CPU float32 when null.</param>
    /// <param name="logger">Receives one line per load.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">Config or tensors missing, malformed, or not matching the config (the message names the file or key).</exception>
    /// <exception cref="UnsupportedModelException">The model type, RoPE scaling or dtype is not supported.</exception>
    public static DecoderModel FromPretrained(string directory, ModelLoadOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        logger ??= NullLogger.Instance;
        TorchRuntime.EnsureLoaded(logger);
        var full = Path.GetFullPath(directory);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        var config = ModelConfigJson.Load(Path.Combine(full, ConfigFileName));
        using var reader = SafetensorsReader.Open(full);
        // Names and shapes are compared with the config before a single parameter is allocated, so a config that does
        // not describe the checkpoint (say num_hidden_layers: 100000 beside a small file) fails at once.
        Validate(config);
        CheckTensors(ExpectedShapes(config), config, reader.Names, name => reader.GetInfo(name).Shape, $"checkpoint '{reader.Source}'");
        var model = CreateShell(config, options); // every parameter is then overwritten from the checkpoint
        try
        {
            model.LoadTensors(name => reader.Read(name, model.DType, model.Device));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model._sourceDirectory = full;
        var deviceName = model.Device.ToString();
        LogLoaded(logger, full, config.ModelType, config.NumHiddenLayers, model.DType, deviceName);
        return model;
    }

    /// <summary>
    /// Writes the model as a Hugging Face folder that <c>transformers</c> loads: <c>config.json</c> (the current config,
    /// after any block removal), safetensors under the canonical names (sharded when larger than the shard limit), and
    /// every other top-level file of <see cref="SourceDirectory"/> (tokenizer, generation config) copied byte for byte
    /// (see <see cref="HfCheckpointFolder.Save"/>). The folder is built in a temporary sibling and moved into place when complete.
    /// </summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="options">Storage dtype (default: the config's <c>torch_dtype</c>), shard size, overwrite, extra files.</param>
    /// <param name="logger">Receives one line per save.</param>
    /// <param name="cancellationToken">Checked between tensors and files; cancelling leaves no target.</param>
    /// <exception cref="IOException">The target exists and overwriting was not allowed, or writing failed.</exception>
    /// <exception cref="UnsupportedModelException">The storage dtype is not float32, float16, bfloat16 or float64.</exception>
    /// <exception cref="ArgumentException">An extra file name is not a plain file name or collides with a checkpoint file.</exception>
    public void SavePretrained(string directory, SaveOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new SaveOptions();
        logger ??= NullLogger.Instance;
        var storage = options.DType ?? Precision.FromTorchDtypeName(Config.TorchDtype)
            ?? throw new UnsupportedModelException($"torch_dtype '{Config.TorchDtype}' is not supported for saving (supported: {Precision.TorchDtypeNames}).");
        _ = Precision.TorchDtypeName(storage); // rejects non-floating storage types with UnsupportedModelException
        var source = _sourceDirectory is not null && Directory.Exists(_sourceDirectory) ? _sourceDirectory : null;
        HfCheckpointFolder.Save(directory, Config, state_dict(), source, options with { DType = storage }, logger, cancellationToken);
        var target = Path.GetFullPath(directory);
        LogSaved(logger, target, Config.NumHiddenLayers, storage);
    }

    /// <summary>Copies every parameter from <paramref name="read"/>; the caller has checked names and shapes (<see cref="CheckTensors"/>).</summary>
    private void LoadTensors(Func<string, Tensor> read)
    {
        var expected = state_dict();
        using var noGrad = no_grad();
        foreach (var (key, parameter) in expected)
        {
            using var scope = NewDisposeScope();
            parameter.copy_(read(key));
        }
    }

    /// <summary>Names and shapes of a checkpoint against what the config needs: nothing missing, unexpected or misshapen.</summary>
    internal static void CheckTensors(Dictionary<string, IReadOnlyList<long>> expected, ModelConfig config,
        IReadOnlyCollection<string> names, Func<string, IReadOnlyList<long>> shapeOf, string source)
    {
        var present = new HashSet<string>(names, StringComparer.Ordinal);
        foreach (var key in names.Order(StringComparer.Ordinal))
        {
            if (!expected.ContainsKey(key) && !IsIgnorableCheckpointKey(config, key))
                throw new CheckpointFormatException(
                    $"Unexpected tensor '{key}' in {source}: the {config.ModelType} model with {config.NumHiddenLayers} blocks has no such parameter.");
        }
        foreach (var (key, want) in expected.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!present.Contains(key))
                throw new CheckpointFormatException($"Tensor '{key}' is missing from {source} (expected shape [{string.Join(", ", want)}]).");
            var shape = shapeOf(key);
            if (!shape.SequenceEqual(want))
                throw new CheckpointFormatException(
                    $"Tensor '{key}' in {source} has shape [{string.Join(", ", shape)}] but the config requires [{string.Join(", ", want)}].");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {ModelType} model with {Blocks} blocks from {Directory} as {DType} on {Device}")]
    private static partial void LogLoaded(ILogger logger, string directory, string modelType, int blocks, ScalarType dtype, string device);

    [LoggerMessage(Level = LogLevel.Information, Message = "Saved model with {Blocks} blocks to {Directory} as {DType}")]
    private static partial void LogSaved(ILogger logger, string directory, int blocks, ScalarType dtype);
}
