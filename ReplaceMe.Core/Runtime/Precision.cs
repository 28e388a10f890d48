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

    /// <summary>The one table of floating dtypes and their <c>torch_dtype</c> names (config.json, CLI, saving).</summary>
    private static readonly (string Name, ScalarType Type)[] TorchDtypes =
    [
        ("float32", ScalarType.Float32), ("bfloat16", ScalarType.BFloat16), ("float16", ScalarType.Float16), ("float64", ScalarType.Float64),
    ];

    /// <summary>The supported <c>torch_dtype</c> names, for messages.</summary>
    public static string TorchDtypeNames { get; } = string.Join(", ", TorchDtypes.Select(t => t.Name));

    /// <summary>True for the floating dtypes the model can compute in and store.</summary>
    public static bool IsSupportedCompute(ScalarType dtype) => TorchDtypes.Any(t => t.Type == dtype);

    /// <summary>The dtype a <c>torch_dtype</c> name denotes, or null when the name is not a supported one.</summary>
    public static ScalarType? FromTorchDtypeName(string name) =>
        TorchDtypes.FirstOrDefault(t => t.Name == name) is { Name: not null } hit ? hit.Type : null;

    /// <summary>The <c>torch_dtype</c> name of a supported dtype.</summary>
    /// <exception cref="UnsupportedModelException">The dtype is not float32, bfloat16, float16 or float64.</exception>
    public static string TorchDtypeName(ScalarType dtype) =>
        TorchDtypes.FirstOrDefault(t => t.Type == dtype) is { Name: not null } hit
            ? hit.Name
            : throw new UnsupportedModelException($"Storage dtype {dtype} is not supported (supported: {TorchDtypeNames}).");
}
