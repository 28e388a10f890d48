using ReplaceMe.Core.Checkpoints;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>How <see cref="HfCheckpointFolder.Save"/> writes a checkpoint folder.</summary>
public sealed record CheckpointSaveOptions
{
    /// <summary>Replace an existing target folder (the CLI's <c>--overwrite</c>). Default false: an existing target is an error.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Largest safetensors shard in bytes (default 5 GiB, as <c>transformers</c>).</summary>
    public long MaxShardBytes { get; init; } = SafetensorsWriter.DefaultMaxShardBytes;

    /// <summary>
    /// Store floating-point tensors in this dtype (Float32, Float16, BFloat16 or Float64) and write it as the config's
    /// <c>torch_dtype</c>, e.g. BFloat16 to save a model computed in float32 in its original bf16. Null keeps each
    /// tensor's dtype and the config's <c>torch_dtype</c>. Integer tensors are never cast.
    /// </summary>
    public ScalarType? DType { get; init; }

    /// <summary>Additional text files (file name → UTF-8 content) such as a provenance card; they win over same-named source files.</summary>
    public IReadOnlyDictionary<string, string> ExtraFiles { get; init; } = new Dictionary<string, string>();
}
