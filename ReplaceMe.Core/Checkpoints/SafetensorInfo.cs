namespace ReplaceMe.Core.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">Tensor name (Hugging Face state-dict key).</param>
/// <param name="DType">Stored safetensors dtype name: F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL.</param>
/// <param name="Shape">Tensor shape (empty for a scalar).</param>
/// <param name="File">Full path of the file that stores it.</param>
public sealed record SafetensorInfo(string Name, string DType, IReadOnlyList<long> Shape, string File)
{
    /// <summary>Start of the tensor's bytes, relative to the data section.</summary>
    internal long Begin { get; init; }

    /// <summary>End (exclusive) of the tensor's bytes, relative to the data section.</summary>
    internal long End { get; init; }

    /// <summary>Number of stored bytes.</summary>
    public long ByteCount => End - Begin;
}
