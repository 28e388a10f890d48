using static TorchSharp.torch;

namespace ReplaceMe.Core.Surgery;

/// <summary>One removed cut for <see cref="PrunedCheckpointWriter"/>: the blocks in the ORIGINAL model's indices and its transform.</summary>
/// <param name="Cut">Removed blocks <c>[Start, End)</c> of the source checkpoint (0-based, original indices).</param>
/// <param name="Transform">T, <c>[d, d]</c>, any floating dtype and device, applied as <c>X·T</c> to the MLP output of the
/// nearest kept block before the cut; null removes the blocks without a transform (identity).</param>
public sealed record CutTransform(BlockCut Cut, Tensor? Transform);

/// <summary>How <see cref="PrunedCheckpointWriter"/> writes the pruned folder.</summary>
public sealed record PrunedCheckpointOptions
{
    /// <summary>
    /// Largest safetensors shard in bytes. Null (default) shards like the source: a single-file source gives a single
    /// file, a sharded source gives shards no larger than its largest shard's tensor data.
    /// </summary>
    public long? MaxShardBytes { get; init; }

    /// <summary>Replace an existing target folder (only an empty one or one this library wrote). Default false.</summary>
    public bool Overwrite { get; init; }

    /// <summary>
    /// Storage dtype of the floating-point tensors (Float32, Float16, BFloat16 or Float64), also written as the config's
    /// <c>torch_dtype</c>. Null (default) keeps every tensor's stored dtype: untouched tensors are then copied byte for byte.
    /// </summary>
    public ScalarType? DType { get; init; }

    /// <summary>Additional text files (file name → UTF-8 content), e.g. provenance; they win over same-named source files.</summary>
    public IReadOnlyDictionary<string, string> ExtraFiles { get; init; } = new Dictionary<string, string>();

    /// <summary>Additional single-file safetensors (file name → tensors), e.g. the saved transforms of
    /// <c>PruningResult.Save</c>; written with the folder, inside the same atomic write.</summary>
    internal IReadOnlyDictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>> ExtraTensorFiles { get; init; } =
        new Dictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>>();
}

/// <summary>What <see cref="PrunedCheckpointWriter.Write(string, IReadOnlyList{CutTransform}, string, PrunedCheckpointOptions, IProgress{PruningProgress}, Microsoft.Extensions.Logging.ILogger, CancellationToken)"/> did.</summary>
/// <param name="Directory">The written folder (full path).</param>
/// <param name="OriginalBlockCount">Blocks in the source.</param>
/// <param name="BlockCount">Blocks in the output.</param>
/// <param name="TensorsCopied">Tensors copied byte for byte from the source.</param>
/// <param name="TensorsFolded">Down-projection weights and biases recomputed with a transform.</param>
/// <param name="TensorsCast">Tensors re-encoded because <see cref="PrunedCheckpointOptions.DType"/> differs from their stored dtype.</param>
/// <param name="BytesRead">Tensor bytes read from the source shards.</param>
/// <param name="BytesWritten">Bytes of the safetensors files written (headers included).</param>
/// <param name="Files">Safetensors and index files written, by name.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record PrunedCheckpointReport(
    string Directory,
    int OriginalBlockCount,
    int BlockCount,
    int TensorsCopied,
    int TensorsFolded,
    int TensorsCast,
    long BytesRead,
    long BytesWritten,
    IReadOnlyList<string> Files,
    TimeSpan Elapsed);
