using System.IO.MemoryMappedFiles;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>One validated safetensors file, memory-mapped read-only on first use.</summary>
internal sealed unsafe class MappedSafetensorsFile : IDisposable
{
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;

    public MappedSafetensorsFile(string path)
    {
        Path = path;
        Header = SafetensorsHeader.Read(path);
    }

    public string Path { get; }

    public SafetensorsHeader Header { get; }

    /// <summary>Copies the validated tensor into a new CPU tensor of its stored dtype.</summary>
    public Tensor Read(SafetensorInfo info, long chunkBytes = TensorBytes.DefaultChunkBytes)
    {
        SafetensorsDType.TryGet(info.DType, out var type, out int size);
        byte* start = info.ByteCount == 0 ? null : Map() + Header.DataStart + info.Begin;
        return TensorBytes.FromMemory(start, type, size, [.. info.Shape], chunkBytes);
    }

    private byte* Map()
    {
        if (_base != null) return _base;
        long needed = Header.DataStart + Header.Tensors.Values.Select(t => t.End).DefaultIfEmpty(0).Max();
        try
        {
            // The length of what the path resolves to: a Hub-cache snapshot holds symlinks into blobs/, and
            // FileInfo.Length would be the link's own size.
            long length;
            using (var probe = InputFile.OpenRegular(Path, InputFile.Streamed, "Safetensors file")) length = probe.Length;
            // The header was validated against the file length; a file that shrank since would fault on access.
            if (length < needed)
                throw new CheckpointFormatException($"Safetensors file '{Path}' shrank to {length} bytes after its header was read; {needed} needed.");
            _map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
            return _base;
        }
        catch (IOException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{Path}' could not be memory-mapped: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{Path}' could not be memory-mapped: {ex.Message}", ex);
        }
    }

    public void Dispose()
    {
        if (_base != null)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
