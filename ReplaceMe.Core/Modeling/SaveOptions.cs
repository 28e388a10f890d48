using ReplaceMe.Core.Checkpoints;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>How a Hugging Face folder is written (<see cref="DecoderModel.SavePretrained"/>, <c>PruningResult.Save</c>).</summary>
public sealed record SaveOptions
{
    /// <summary>
    /// Storage dtype of the floating-point tensors (Float32, Float16, BFloat16 or Float64), also written as the config's
    /// <c>torch_dtype</c>; null keeps the config's <c>torch_dtype</c> (a bfloat16 checkpoint stays bfloat16). Integer
    /// tensors are never cast.
    /// </summary>
    public ScalarType? DType { get; init; }

    /// <summary>Largest safetensors shard in bytes (default 5 GiB, as <c>transformers</c>).</summary>
    public long MaxShardBytes { get; init; } = SafetensorsWriter.DefaultMaxShardBytes;

    /// <summary>Replace an existing target folder (the CLI's <c>--overwrite</c>). Default false: an existing target is an error.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Additional text files (file name → UTF-8 content), e.g. a provenance card; they win over same-named source files.</summary>
    public IReadOnlyDictionary<string, string> ExtraFiles { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Additional safetensors files (file name → tensors, written as stored dtype), e.g. a pruned model's transforms.
    /// Internal: <c>PruningResult.Save</c> uses it so that the file is part of the same atomic folder write.
    /// </summary>
    internal IReadOnlyDictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>> ExtraTensorFiles { get; init; } =
        new Dictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>>();
}
