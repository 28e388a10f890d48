namespace ReplaceMe.Core.Checkpoints;

/// <summary>One tensor's entry in a safetensors header, as <see cref="SafetensorsReader.GetInfo"/> reports it.</summary>
public sealed class SafetensorInfo
{
    internal SafetensorInfo(string name, string dtype, IReadOnlyList<long> shape, string file)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        File = file;
    }

    /// <summary>Tensor name (Hugging Face state-dict key).</summary>
    public string Name { get; }

    /// <summary>Stored safetensors dtype name: F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL.</summary>
    public string DType { get; }

    /// <summary>Tensor shape (empty for a scalar).</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Full path of the file that stores it.</summary>
    public string File { get; }

    /// <summary>Start of the tensor's bytes, relative to the data section.</summary>
    internal long Begin { get; init; }

    /// <summary>End (exclusive) of the tensor's bytes, relative to the data section.</summary>
    internal long End { get; init; }

    /// <summary>Number of stored bytes.</summary>
    public long ByteCount => End - Begin;
}
