using static TorchSharp.torch;

namespace ReplaceMe.Core.Runtime;

/// <summary>Dtype rules shared by the model's numerically sensitive steps.</summary>
internal static class Precision
{
    /// <summary>
    /// The dtype for norms, softmax and RoPE tables: float32 like Hugging Face for half precisions and float32,
    /// float64 kept as is so that a float64 model is exact to float64 round-off.
    /// </summary>
    public static ScalarType AtLeastFloat32(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>True for the floating dtypes the model can compute in.</summary>
    public static bool IsSupportedCompute(ScalarType dtype) =>
        dtype is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16;
}
