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
    /// <exception cref="InsufficientModelMemoryException">The weights in the compute dtype exceed the machine's memory (checked
    /// before anything is allocated on the CPU), or an allocation failed while loading.</exception>
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
        var resolved = options ?? new ModelLoadOptions();
        long weightBytes = WeightBytes(config, resolved.DType);
        CheckFits(full, weightBytes, resolved);
        DecoderModel model;
        try
        {
            model = CreateShell(config, options); // every parameter is then overwritten from the checkpoint
        }
        catch (Exception ex) when (MemoryGuard.IsAllocationFailure(ex))
        {
            throw OutOfMemory(full, weightBytes, resolved, ex);
        }
        try
        {
            model.LoadTensors(name => reader.Read(name, model.DType, model.Device), $"checkpoint '{reader.Source}'");
        }
        catch (Exception ex) when (MemoryGuard.IsAllocationFailure(ex))
        {
            model.Dispose();
            throw OutOfMemory(full, weightBytes, resolved, ex);
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
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output needs plus a margin; checked before anything is written.</exception>
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

    /// <summary>Bytes of every parameter the config implies, in <paramref name="dtype"/>.</summary>
    internal static long WeightBytes(ModelConfig config, ScalarType dtype)
    {
        long elements = 0;
        foreach (var shape in ExpectedShapes(config).Values)
        {
            long n = 1;
            foreach (var dim in shape) n = checked(n * dim);
            elements = checked(elements + n);
        }
        long size = dtype switch
        {
            ScalarType.Float64 => 8,
            ScalarType.Float32 => 4,
            ScalarType.BFloat16 or ScalarType.Float16 => 2,
            _ => throw new UnsupportedModelException($"Compute dtype {dtype} is not supported (supported: {Precision.TorchDtypeNames})."),
        };
        return checked(elements * size);
    }

    /// <summary>On the CPU, refuses weights larger than the machine's memory before anything is allocated (the OS would
    /// otherwise kill the process part-way, or LibTorch abort).</summary>
    private static void CheckFits(string folder, long weightBytes, ModelLoadOptions options)
    {
        if (options.ResolvedDevice.type != DeviceType.CPU) return; // the allocator's own error is translated instead
        long total = MemoryGuard.CpuBytes;
        if (total > 0 && weightBytes > total)
            throw new InsufficientModelMemoryException(
                $"Model '{folder}' needs {MemoryGuard.Describe(weightBytes)} for its weights as {options.DType} but this machine has " +
                $"{MemoryGuard.Describe(total)} of memory in all: {Advice(options)}")
            { RequiredBytes = weightBytes, DeviceBytes = total };
    }

    private static InsufficientModelMemoryException OutOfMemory(string folder, long weightBytes, ModelLoadOptions options, Exception cause) =>
        new($"Out of memory while loading model '{folder}' as {options.DType} on {options.ResolvedDevice}: its weights need " +
            $"{MemoryGuard.Describe(weightBytes)} ({MemoryGuard.FirstLine(cause)}). {Advice(options)}", cause)
        {
            RequiredBytes = weightBytes,
            DeviceBytes = options.ResolvedDevice.type == DeviceType.CPU ? MemoryGuard.CpuBytes : 0,
        };

    private static string Advice(ModelLoadOptions options) =>
        options.DType is ScalarType.Float32 or ScalarType.Float64
            ? "load it in a 16-bit dtype (bfloat16 on a GPU; on the CPU bfloat16 is much slower), close other programs, or use a machine with more memory."
            : "close other programs or use a machine or GPU with more memory.";

    /// <summary>Copies every parameter from <paramref name="read"/>; the caller has checked names and shapes (<see cref="CheckTensors"/>).</summary>
    private void LoadTensors(Func<string, Tensor> read, string source)
    {
        var expected = state_dict();
        using var noGrad = no_grad();
        foreach (var (key, parameter) in expected)
        {
            using var scope = NewDisposeScope();
            parameter.copy_(read(key));
            // A NaN or Inf weight makes every later result meaningless (an empty story, ppl NaN): refuse it here, by name.
            if (!parameter.isfinite().all().item<bool>())
            {
                long bad = parameter.isfinite().logical_not().sum().item<long>();
                throw new CheckpointFormatException(
                    $"Tensor '{key}' in {source} has {bad} NaN or infinite value(s) after conversion to {DType}: the checkpoint is corrupt" +
                    (DType is ScalarType.Float16 ? " or its values overflow float16 (load it as float32 or bfloat16)." : "."));
            }
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
