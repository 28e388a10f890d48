using Microsoft.Win32.SafeHandles;
using ReplaceMe.Core.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Reads tensors, row ranges and single rows of a validated safetensors checkpoint with positioned reads
/// (<see cref="RandomAccess"/>) straight into tensor storage. Unlike the memory map of <see cref="SafetensorsReader.Read"/>,
/// the pages read this way sit in the OS page cache, not in the process's resident set, so reading a model block after
/// block does not grow the RSS towards the model's size.
/// </summary>
internal sealed class PositionedTensorReader : IDisposable
{
    private const long ChunkBytes = 64L << 20;
    private readonly SafetensorsReader _reader;
    private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);

    public PositionedTensorReader(SafetensorsReader reader) => _reader = reader;

    /// <summary>Bytes read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Stored dtype and its element size of tensor <paramref name="name"/>.</summary>
    public (ScalarType Type, int ElementSize) StoredType(string name)
    {
        var info = _reader.GetInfo(name);
        SafetensorsDType.TryGet(info.DType, out var type, out int size);
        return (type, size);
    }

    /// <summary>The whole tensor in its stored dtype, on the CPU.</summary>
    public Tensor Read(string name)
    {
        var info = _reader.GetInfo(name);
        var (type, size) = StoredType(name);
        var (file, offset, _) = _reader.Locate(name);
        return ReadInto(file, offset, type, size, [.. info.Shape], name);
    }

    /// <summary>Rows <c>[first, first + count)</c> of a 2-D tensor, in its stored dtype, on the CPU: <c>[count, columns]</c>.</summary>
    public Tensor ReadRows(string name, long first, long count)
    {
        var info = _reader.GetInfo(name);
        var (type, size) = StoredType(name);
        long columns = info.Shape[1];
        var (file, offset, _) = _reader.Locate(name);
        return ReadInto(file, offset + first * columns * size, type, size, [count, columns], name);
    }

    /// <summary>The listed rows of a 2-D tensor (any order, repeats allowed), in its stored dtype: <c>[rows.Count, columns]</c>.</summary>
    public Tensor Gather(string name, IReadOnlyList<long> rows)
    {
        var info = _reader.GetInfo(name);
        var (type, size) = StoredType(name);
        long columns = info.Shape[1];
        var (file, offset, _) = _reader.Locate(name);
        var handle = Handle(file);
        var result = empty([rows.Count, columns], type, device: CPU);
        using var scope = NewDisposeScope();
        for (int i = 0; i < rows.Count; i++)
            Fill(handle, result[i].bytes, offset + rows[i] * columns * size, file, name);
        return result;
    }

    private Tensor ReadInto(string file, long offset, ScalarType type, int size, long[] shape, string name)
    {
        var handle = Handle(file);
        var result = empty(shape, type, device: CPU);
        long elements = result.numel();
        if (elements == 0) return result;
        using var scope = NewDisposeScope();
        var flat = result.view(-1);
        long chunk = Math.Max(1, ChunkBytes / size);
        for (long start = 0; start < elements; start += chunk)
        {
            long n = Math.Min(chunk, elements - start);
            Fill(handle, flat.narrow(0, start, n).bytes, offset + start * size, file, name);
        }
        return result;
    }

    private void Fill(SafeFileHandle handle, Span<byte> target, long offset, string file, string name)
    {
        for (int done = 0; done < target.Length;)
        {
            int got = RandomAccess.Read(handle, target[done..], offset + done);
            if (got <= 0)
                throw new CheckpointFormatException($"Safetensors file '{file}' ended while tensor '{name}' was being read: it changed after its header was validated.");
            done += got;
        }
        BytesRead += target.Length;
    }

    private SafeFileHandle Handle(string file)
    {
        if (!_handles.TryGetValue(file, out var handle))
            _handles[file] = handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        return handle;
    }

    public void Dispose()
    {
        foreach (var h in _handles.Values) h.Dispose();
        _handles.Clear();
    }
}
