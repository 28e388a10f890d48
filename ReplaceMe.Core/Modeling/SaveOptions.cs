using ReplaceMe.Core.Checkpoints;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>How <see cref="DecoderModel.SavePretrained"/> writes a Hugging Face folder.</summary>
public sealed record SaveOptions
{
    /// <summary>Storage dtype of the tensors; null keeps the config's <c>torch_dtype</c> (a bfloat16 checkpoint stays bfloat16).</summary>
    public ScalarType? DType { get; init; }

    /// <summary>Largest safetensors shard in bytes (default 5 GiB, as <c>transformers</c>).</summary>
    public long MaxShardBytes { get; init; } = SafetensorsWriter.DefaultMaxShardBytes;

    /// <summary>Replace an existing target folder.</summary>
    public bool Overwrite { get; init; }
}
