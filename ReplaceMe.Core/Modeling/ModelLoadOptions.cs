using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>Where and in which precision a <see cref="DecoderModel"/> holds its weights and computes.</summary>
/// <param name="Device">Device for weights and activations; null means the CPU.</param>
/// <param name="DType">
/// Compute dtype (float32 by default; float64 for exact comparisons; bfloat16/float16 on accelerators).
/// Checkpoint tensors stored in another dtype are converted to it when loaded.
/// </param>
public sealed record ModelLoadOptions(Device? Device = null, ScalarType DType = ScalarType.Float32)
{
    /// <summary>The device to use, resolving null to the CPU.</summary>
    public Device ResolvedDevice => Device ?? CPU;
}
