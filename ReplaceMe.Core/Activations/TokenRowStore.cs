using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>
/// Stores float32 token rows of several aligned matrices (e.g. X and Z, each <c>[N, d_k]</c>) for the gradient
/// estimator, valid tokens only. At most <see cref="RowCap"/> rows are kept: beyond that, reservoir sampling keeps a
/// uniform random subset (deterministic for a seed). Rows fill RAM up to a byte budget; the rest goes to a temporary
/// file that is deleted when the store is disposed (the file is opened delete-on-close, so it also goes away when an
/// exception unwinds through a <c>using</c>). Memory does not depend on the number of rows offered, only on the cap
/// and the budget (docs/method.md, "Cosine memory").
/// </summary>
internal sealed class TokenRowStore : IDisposable
{
    private const int ChunkFloats = 1 << 20; // 4 MB RAM chunks: no single huge allocation, no LOH churn per batch
    private readonly int[] _widths;
    private readonly int[] _offsets; // offset of matrix k inside one record
    private readonly int _recordFloats;
    private readonly long _ramRowCapacity;
    private readonly int _chunkRows;
    private readonly List<float[]> _chunks = [];
    private readonly Random _reservoir;
    private readonly string _spillDirectory;
    private SafeFileHandle? _spill;
    private bool _disposed;

    /// <summary>Creates an empty store.</summary>
    /// <param name="widths">Column count of each aligned matrix (e.g. [d, d] for X and Z).</param>
    /// <param name="rowCap">Most rows kept (≥ 1); more rows offered are subsampled uniformly.</param>
    /// <param name="memoryBudgetBytes">RAM for rows (≥ 0); rows beyond it spill to a temporary file.</param>
    /// <param name="seed">Seed of the reservoir subsampling.</param>
    /// <param name="spillDirectory">Folder for the spill file; the system temporary folder when null.</param>
    public TokenRowStore(IReadOnlyList<int> widths, long rowCap, long memoryBudgetBytes, int seed, string? spillDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(widths);
        if (widths.Count == 0 || widths.Any(w => w <= 0))
            throw new ArgumentException("Every matrix needs a positive width, and there must be at least one.", nameof(widths));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowCap);
        ArgumentOutOfRangeException.ThrowIfNegative(memoryBudgetBytes);
        _widths = [.. widths];
        _offsets = new int[_widths.Length];
        for (int k = 1; k < _widths.Length; k++) _offsets[k] = _offsets[k - 1] + _widths[k - 1];
        _recordFloats = _offsets[^1] + _widths[^1];
        RowCap = rowCap;
        _ramRowCapacity = Math.Min(rowCap, memoryBudgetBytes / RecordBytes);
        _chunkRows = Math.Max(1, ChunkFloats / _recordFloats);
        _reservoir = new Random(seed);
        _spillDirectory = spillDirectory ?? Path.GetTempPath();
    }

    /// <summary>Widths of the aligned matrices.</summary>
    public IReadOnlyList<int> Widths => _widths;

    /// <summary>Most rows kept.</summary>
    public long RowCap { get; }

    /// <summary>Bytes of one stored row across all matrices.</summary>
    public long RecordBytes => (long)_recordFloats * sizeof(float);

    /// <summary>Rows offered so far.</summary>
    public long RowsSeen { get; private set; }

    /// <summary>Rows kept (≤ <see cref="RowCap"/>).</summary>
    public long RowsStored { get; private set; }

    /// <summary>True when more rows were offered than kept.</summary>
    public bool Subsampled => RowsSeen > RowsStored;

    /// <summary>Highest RAM held for rows, in bytes.</summary>
    public long PeakMemoryBytes { get; private set; }

    /// <summary>True when some rows live in the spill file.</summary>
    public bool Spilled => SpilledRows > 0;

    /// <summary>Rows in the spill file.</summary>
    public long SpilledRows => Math.Max(0, RowsStored - _ramRowCapacity);

    /// <summary>Bytes in the spill file.</summary>
    public long SpilledBytes => SpilledRows * RecordBytes;

    /// <summary>Path of the spill file while it exists, else null.</summary>
    public string? SpillPath { get; private set; }

    /// <summary>Offers rows: one tensor per matrix, <c>[N, width_k]</c>, any float dtype and device, same N.</summary>
    /// <exception cref="ArgumentException">Wrong number of matrices or mismatched shapes.</exception>
    public void Add(params Tensor[] matrices)
    {
        ArgumentNullException.ThrowIfNull(matrices);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (matrices.Length != _widths.Length)
            throw new ArgumentException($"Expected {_widths.Length} matrices, got {matrices.Length}.", nameof(matrices));
        long n = matrices[0].shape[0];
        for (int k = 0; k < matrices.Length; k++)
            if (matrices[k].dim() != 2 || matrices[k].shape[0] != n || matrices[k].shape[1] != _widths[k])
                throw new ArgumentException(
                    $"Matrix {k} must be [{n}, {_widths[k]}]; got [{string.Join(", ", matrices[k].shape)}].", nameof(matrices));
        if (n == 0) return;

        // Decide first which rows are kept (the reservoir's random draws do not depend on row values), so only those
        // rows leave the device: past the cap most rows of a batch are dropped without being copied.
        var keptRows = new List<long>();
        var keptSlots = new List<long>();
        for (long r = 0; r < n; r++)
        {
            long slot;
            if (RowsStored < RowCap) slot = RowsStored++;
            else
            {
                // Algorithm R: row number RowsSeen replaces a uniformly chosen slot with probability cap/(seen+1).
                long j = _reservoir.NextInt64(RowsSeen + 1);
                slot = j < RowCap ? j : -1;
            }
            RowsSeen++;
            if (slot < 0) continue;
            keptRows.Add(r);
            keptSlots.Add(slot);
        }
        if (keptRows.Count == 0) return;

        // Each kept row is copied straight from the (CPU, float32, contiguous) tensor into its slot: no per-batch
        // managed arrays, so the garbage collector has nothing batch-sized to defer (docs/method.md, "Cosine memory").
        using (NewDisposeScope())
        {
            var index = keptRows.Count == n ? null : tensor(keptRows.ToArray(), ScalarType.Int64, matrices[0].device); // [kept]
            for (int k = 0; k < matrices.Length; k++)
            {
                var rows = index is null ? matrices[k].detach() : matrices[k].detach().index_select(0, index.to(matrices[k].device)); // [kept, w_k]
                var cpu = rows.to(ScalarType.Float32, CPU).contiguous(); // [kept, w_k]
                var source = FloatSpan(cpu);
                for (int i = 0; i < keptRows.Count; i++)
                    WriteField(keptSlots[i], k, source.Slice(i * _widths[k], _widths[k])); // in row order: a later row wins a slot drawn twice
            }
        }
    }

    /// <summary>
    /// Stored rows in mini-batches as float32 tensors on <paramref name="device"/>, one per matrix,
    /// <c>[n, width_k]</c>, detached from any dispose scope: the caller disposes each batch
    /// (see <see cref="DisposeAll"/>). Order: storage order when
    /// <paramref name="shuffleSeed"/> is null, else a permutation seeded by it.
    /// </summary>
    public IEnumerable<Tensor[]> Batches(int batchSize, Device device, int? shuffleSeed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentNullException.ThrowIfNull(device);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Iterate(batchSize, device, shuffleSeed);
    }

    private IEnumerable<Tensor[]> Iterate(int batchSize, Device device, int? shuffleSeed)
    {
        long count = RowsStored;
        if (count == 0) yield break;
        var order = new long[count];
        for (long i = 0; i < count; i++) order[i] = i;
        if (shuffleSeed is int s) new Random(s).Shuffle(order);
        int capacity = (int)Math.Min(batchSize, count);
        // One float32 buffer per matrix for the whole pass, filled in place for every batch; batches are views of it
        // (on the CPU) or copies on the device. So a pass allocates O(batch) memory once, not per batch.
        var buffers = new Tensor[_widths.Length];
        try
        {
            for (int k = 0; k < buffers.Length; k++) buffers[k] = empty([capacity, _widths[k]], ScalarType.Float32).DetachFromDisposeScope();
            var record = new float[_recordFloats];
            bool onCpu = device.type == DeviceType.CPU;
            for (long start = 0; start < count; start += batchSize)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                int n = (int)Math.Min(batchSize, count - start);
                Fill(buffers, order, start, n, record);
                var batch = new Tensor[buffers.Length];
                for (int k = 0; k < buffers.Length; k++)
                {
                    var view = buffers[k].narrow(0, 0, n); // [n, w_k]
                    if (!onCpu)
                    {
                        using var local = view;
                        view = local.to(device, copy: true);
                    }
                    batch[k] = view.DetachFromDisposeScope(); // owned by the caller
                }
                yield return batch;
            }
        }
        finally
        {
            foreach (var b in buffers) b?.Dispose();
        }
    }

    private void Fill(Tensor[] buffers, long[] order, long start, int n, float[] record)
    {
        for (int r = 0; r < n; r++)
        {
            var row = ReadRecord(order[start + r], record);
            for (int k = 0; k < buffers.Length; k++)
                row.Slice(_offsets[k], _widths[k]).CopyTo(FloatSpan(buffers[k]).Slice(r * _widths[k], _widths[k]));
        }
    }

    /// <summary>Bytes a pass of <see cref="Batches"/> allocates besides the batches on a non-CPU device: one float32 buffer of <paramref name="batchSize"/> rows.</summary>
    public long PassBufferBytes(int batchSize) => Math.Min(batchSize, Math.Max(1, RowCap)) * RecordBytes;

    /// <summary>The float32 data of a contiguous CPU tensor as a span (valid while the tensor lives).</summary>
    private static Span<float> FloatSpan(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

    /// <summary>Disposes every tensor of a batch returned by <see cref="Batches"/>.</summary>
    public static void DisposeAll(Tensor[] batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var t in batch) t.Dispose();
    }

    /// <summary>Writes matrix <paramref name="k"/>'s part of the record in <paramref name="slot"/>.</summary>
    private void WriteField(long slot, int k, ReadOnlySpan<float> values)
    {
        if (slot < _ramRowCapacity)
        {
            var chunk = RamChunk(slot / _chunkRows);
            values.CopyTo(chunk.AsSpan((int)((slot % _chunkRows) * _recordFloats) + _offsets[k], _widths[k]));
            return;
        }
        var handle = SpillHandle();
        RandomAccess.Write(handle, MemoryMarshal.AsBytes(values), (slot - _ramRowCapacity) * RecordBytes + (long)_offsets[k] * sizeof(float));
    }

    /// <summary>The record in <paramref name="slot"/>: a view of RAM, or <paramref name="scratch"/> filled from the spill file.</summary>
    private ReadOnlySpan<float> ReadRecord(long slot, float[] scratch)
    {
        if (slot < _ramRowCapacity)
            return _chunks[(int)(slot / _chunkRows)].AsSpan((int)((slot % _chunkRows) * _recordFloats), _recordFloats);
        var bytes = MemoryMarshal.AsBytes(scratch.AsSpan());
        long offset = (slot - _ramRowCapacity) * RecordBytes;
        int read = 0;
        while (read < bytes.Length)
        {
            int got = RandomAccess.Read(_spill!, bytes[read..], offset + read);
            if (got <= 0) throw new IOException($"The spill file {SpillPath} ended early at byte {offset + read}.");
            read += got;
        }
        return scratch;
    }

    private float[] RamChunk(long index)
    {
        while (_chunks.Count <= index)
        {
            long firstRow = (long)_chunks.Count * _chunkRows;
            long rows = Math.Min(_chunkRows, _ramRowCapacity - firstRow);
            _chunks.Add(new float[rows * _recordFloats]);
            PeakMemoryBytes += rows * RecordBytes;
        }
        return _chunks[(int)index];
    }

    private SafeFileHandle SpillHandle()
    {
        if (_spill is not null) return _spill;
        Directory.CreateDirectory(_spillDirectory);
        string path = Path.Combine(_spillDirectory, $"replaceme-rows-{Guid.NewGuid():N}.bin");
        _spill = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        SpillPath = path;
        return _spill;
    }

    /// <summary>Frees RAM rows and closes and deletes the spill file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _chunks.Clear();
        if (_spill is not null)
        {
            _spill.Dispose();
            if (SpillPath is not null && File.Exists(SpillPath)) File.Delete(SpillPath);
            SpillPath = null;
        }
    }
}
