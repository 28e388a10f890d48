using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>The safetensors dtype names this library reads and writes, with their torch type and element size.</summary>
internal static class SafetensorsDType
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static IEnumerable<string> Names => ByName.Keys;

    public static bool TryGet(string name, out ScalarType type, out int size)
    {
        if (ByName.TryGetValue(name, out var e))
        {
            (type, size) = e;
            return true;
        }
        (type, size) = (default, 0);
        return false;
    }

    /// <exception cref="UnsupportedModelException">The torch type has no safetensors name here.</exception>
    public static (string Name, int Size) FromScalarType(ScalarType type, string tensorName)
    {
        foreach (var (name, e) in ByName)
            if (e.Type == type) return (name, e.Size);
        throw new UnsupportedModelException($"Tensor '{tensorName}' has dtype {type}, which cannot be written to safetensors here; supported: {string.Join(", ", ByName.Keys)}.");
    }
}
