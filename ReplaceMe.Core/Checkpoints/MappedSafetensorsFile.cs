using System.IO.MemoryMappedFiles;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// One validated safetensors file, memory-mapped read-only on first use. Its size and modification time are recorded
/// when it is opened and checked before and after every tensor read (<see cref="SourceFileChangedException"/>).
/// </summary>
internal sealed unsafe class MappedSafetensorsFile : IDisposable
{
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;

    public MappedSafetensorsFile(string path)
    {
        Path = path;
        Stamp = FileStamp.Of(path); // before the header: a change while it is read is caught by the first check
        Header = SafetensorsHeader.Read(path);
    }

    /// <summary>Size and modification time when the file was opened.</summary>
    public FileStamp Stamp { get; }

    /// <summary>Throws <see cref="SourceFileChangedException"/> when the file's size or modification time changed since it was opened.</summary>
    public void CheckUnchanged(string @while) => Stamp.CheckUnchanged(Path, @while);

    public string Path { get; }

    public SafetensorsHeader Header { get; }

    /// <summary>Copies the validated tensor into a new CPU tensor of its stored dtype.</summary>
    public Tensor Read(SafetensorInfo info, long chunkBytes = TensorBytes.DefaultChunkBytes)
    {
        SafetensorsDType.TryGet(info.DType, out var type, out int size);
        CheckUnchanged($"tensor '{info.Name}' was about to be read");
        byte* start = info.ByteCount == 0 ? null : Map() + Header.DataStart + info.Begin;
        var tensor = TensorBytes.FromMemory(start, type, size, [.. info.Shape], chunkBytes);
        try
        {
            CheckUnchanged($"tensor '{info.Name}' was being read");
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
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
