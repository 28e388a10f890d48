using ReplaceMe.Core.Checkpoints;
using Microsoft.Win32.SafeHandles;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>
/// The residual streams of every calibration batch between two blocks of a block-major pass: kept in RAM up to a
/// budget, written beyond it to one spill file in a folder of the caller's choice (float32 by default, or a 16-bit
/// dtype to halve the disk traffic at the cost of rounding). The spill file never outlives the store: on Linux and macOS
/// it is unlinked right after it is opened (the open handle keeps it readable, and a crash leaves nothing); on Windows
/// it is opened delete-on-close. Free space is checked before the file is created.
/// </summary>
internal sealed class HiddenStateStore : IDisposable
{
    private readonly long _ramBudget;
    private readonly string _spillDirectory;
    private readonly ScalarType _spillType;
    private readonly Dictionary<int, Tensor> _ram = [];
    private readonly Dictionary<int, (long Offset, long Bytes, long[] Shape, ScalarType DType, Device Device)> _spilled = [];
    private readonly Dictionary<int, (long Offset, long Bytes)> _slots = [];
    private SafeFileHandle? _file;
    private long _fileEnd;
    private long _ramBytes;

    /// <param name="ramBudgetBytes">Bytes of hidden states kept in RAM before spilling.</param>
    /// <param name="spillDirectory">Folder for the spill file; null uses the system's temporary folder.</param>
    /// <param name="spillType">Dtype of the spilled rows: Float32 (exact for a float32 model), BFloat16 or Float16.</param>
    public HiddenStateStore(long ramBudgetBytes, string? spillDirectory, ScalarType spillType = ScalarType.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ramBudgetBytes);
        if (spillType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"The spill dtype must be Float32, BFloat16, Float16 or Float64, not {spillType}.", nameof(spillType));
        _ramBudget = ramBudgetBytes;
        _spillDirectory = Path.GetFullPath(spillDirectory ?? Path.GetTempPath());
        _spillType = spillType;
    }

    /// <summary>Path of the spill file while it is being created (it is unlinked at once where the OS allows), or null.</summary>
    public string? SpillPath { get; private set; }

    /// <summary>Bytes currently held in RAM.</summary>
    public long RamBytes => _ramBytes;

    /// <summary>Most bytes held in RAM at once.</summary>
    public long PeakRamBytes { get; private set; }

    /// <summary>Bytes written to the spill file so far (all writes).</summary>
    public long SpilledBytes { get; private set; }

    /// <summary>Hidden states currently held (in RAM or spilled).</summary>
    public int Count => _ram.Count + _spilled.Count;

    /// <summary>
    /// Checks before the pass that the states that cannot stay in RAM fit the spill folder's free space.
    /// </summary>
    /// <param name="totalBytes">Bytes of every batch's hidden state in the compute dtype.</param>
    /// <param name="computeElementSize">Element size of the compute dtype.</param>
    /// <exception cref="InsufficientDiskSpaceException">Not enough free space: the message names the folder, the bytes needed and free.</exception>
    public void CheckSpace(long totalBytes, int computeElementSize)
    {
        long over = totalBytes - _ramBudget;
        if (over <= 0) return;
        long need = checked(totalBytes / computeElementSize * ElementSize(_spillType));
        Directory.CreateDirectory(_spillDirectory);
        long free = DiskSpace.FreeBytes(_spillDirectory);
        if (free < need)
            throw new InsufficientDiskSpaceException(
                $"Spill folder '{_spillDirectory}' has {MemoryGuard.Describe(free)} free but the hidden states of the calibration batches need up to " +
                $"{MemoryGuard.Describe(need)} there beyond the RAM budget of {MemoryGuard.Describe(_ramBudget)}: free space, choose another spill folder, " +
                "raise the memory budget, or use less calibration data.")
            {
                Directory = _spillDirectory, RequiredBytes = need, AvailableBytes = free,
            };
    }

    /// <summary>Stores <paramref name="hidden"/> under <paramref name="key"/> and takes ownership of it (it may be disposed at once when spilled).</summary>
    public void Put(int key, Tensor hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        if (_ram.ContainsKey(key) || _spilled.ContainsKey(key)) throw new InvalidOperationException($"Hidden state {key} is already stored.");
        long bytes = hidden.numel() * hidden.ElementSize;
        if (_ramBytes + bytes <= _ramBudget)
        {
            _ram[key] = hidden.DetachFromDisposeScope();
            _ramBytes += bytes;
            PeakRamBytes = Math.Max(PeakRamBytes, _ramBytes);
            return;
        }
        using (var scope = NewDisposeScope())
        {
            var rows = hidden.detach().to(_spillType).cpu().contiguous();
            long size = rows.numel() * rows.ElementSize;
            if (!_slots.TryGetValue(key, out var slot) || slot.Bytes < size)
            {
                slot = (_fileEnd, size);
                _fileEnd += size;
                _slots[key] = slot;
            }
            var file = File();
            var flat = rows.view(-1);
            long chunk = Math.Max(1, (64L << 20) / rows.ElementSize);
            for (long start = 0; start < flat.numel(); start += chunk)
            {
                long n = Math.Min(chunk, flat.numel() - start);
                RandomAccess.Write(file, flat.narrow(0, start, n).bytes, slot.Offset + start * rows.ElementSize);
            }
            SpilledBytes += size;
            _spilled[key] = (slot.Offset, size, hidden.shape, hidden.dtype, hidden.device);
        }
        hidden.Dispose();
    }

    /// <summary>Removes and returns the hidden state stored under <paramref name="key"/> (the caller owns it).</summary>
    public Tensor Take(int key)
    {
        if (_ram.Remove(key, out var kept))
        {
            _ramBytes -= kept.numel() * kept.ElementSize;
            return kept;
        }
        if (!_spilled.Remove(key, out var s)) throw new KeyNotFoundException($"Hidden state {key} is not stored.");
        return ReadSpilled(s.Offset, s.Shape, s.DType, s.Device);
    }

    /// <summary>A copy of the hidden state stored under <paramref name="key"/>, which stays stored (the caller owns the
    /// returned tensor: an alias of the RAM tensor, or the spilled rows read back).</summary>
    public Tensor Read(int key)
    {
        if (_ram.TryGetValue(key, out var kept)) return kept.alias();
        if (!_spilled.TryGetValue(key, out var s)) throw new KeyNotFoundException($"Hidden state {key} is not stored.");
        return ReadSpilled(s.Offset, s.Shape, s.DType, s.Device);
    }

    private Tensor ReadSpilled(long offset, long[] shape, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var rows = empty(shape, _spillType, device: CPU);
        var flat = rows.view(-1);
        long chunk = Math.Max(1, (64L << 20) / rows.ElementSize);
        for (long start = 0; start < flat.numel(); start += chunk)
        {
            long n = Math.Min(chunk, flat.numel() - start);
            var span = flat.narrow(0, start, n).bytes;
            for (int done = 0; done < span.Length;)
            {
                int got = RandomAccess.Read(_file!, span[done..], offset + start * rows.ElementSize + done);
                if (got <= 0) throw new IOException($"The spill file in '{_spillDirectory}' ended early: it was truncated while in use.");
                done += got;
            }
        }
        return rows.to(dtype, device).MoveToOuterDisposeScope();
    }

    private SafeFileHandle File()
    {
        if (_file is not null) return _file;
        Directory.CreateDirectory(_spillDirectory);
        SpillPath = Path.Combine(_spillDirectory, $"replaceme-spill-{Guid.NewGuid():N}.bin");
        bool windows = OperatingSystem.IsWindows();
        _file = System.IO.File.OpenHandle(SpillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
            windows ? FileOptions.DeleteOnClose | FileOptions.RandomAccess : FileOptions.RandomAccess);
        if (!windows) System.IO.File.Delete(SpillPath); // the handle keeps the data; a crash leaves no file
        return _file;
    }

    private static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };

    /// <summary>Frees the RAM states and closes (so deletes) the spill file.</summary>
    public void Dispose()
    {
        foreach (var t in _ram.Values) t.Dispose();
        _ram.Clear();
        _ramBytes = 0;
        _spilled.Clear();
        _file?.Dispose();
        _file = null;
    }
}
