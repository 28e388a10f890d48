using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>Copies raw little-endian tensor bytes between native memory / streams and CPU tensors, in chunks (Span is int-sized).</summary>
internal static unsafe class TensorBytes
{
    /// <summary>Largest piece copied at once.</summary>
    public const long DefaultChunkBytes = 1L << 30;

    /// <summary>A new contiguous CPU tensor of <paramref name="shape"/> filled from <paramref name="source"/>.</summary>
    public static Tensor FromMemory(byte* source, ScalarType type, int elementSize, long[] shape, long chunkBytes = DefaultChunkBytes)
    {
        var result = torch.empty(shape, type, device: CPU);
        long elements = result.numel();
        if (elements == 0) return result;
        using var scope = torch.NewDisposeScope();
        var flat = result.view(-1); // [numel], shares storage with result
        long chunkElements = Math.Max(1, chunkBytes / elementSize);
        for (long start = 0; start < elements; start += chunkElements)
        {
            long n = Math.Min(chunkElements, elements - start);
            var part = flat.narrow(0, start, n);
            new ReadOnlySpan<byte>(source + start * elementSize, checked((int)(n * elementSize))).CopyTo(part.bytes);
        }
        return result;
    }

    /// <summary>Writes the tensor's elements (row-major, little-endian) to <paramref name="stream"/>; returns the byte count.</summary>
    public static long Write(Tensor tensor, Stream stream, long chunkBytes = DefaultChunkBytes)
    {
        using var scope = torch.NewDisposeScope();
        var flat = tensor.detach().cpu().contiguous().view(-1); // [numel]
        long elements = flat.numel();
        int elementSize = (int)flat.ElementSize;
        long chunkElements = Math.Max(1, chunkBytes / elementSize);
        for (long start = 0; start < elements; start += chunkElements)
        {
            long n = Math.Min(chunkElements, elements - start);
            stream.Write(flat.narrow(0, start, n).bytes);
        }
        return elements * elementSize;
    }
}
