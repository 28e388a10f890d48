using System.Buffers.Binary;
using System.Text;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>ggml tensor types the writer can produce (the numeric values are ggml's <c>ggml_type</c>).</summary>
internal enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
    BF16 = 30,
}

/// <summary>One tensor of a GGUF file: its name, its dimensions in ggml order (fastest-varying first, i.e. a torch
/// shape reversed), its storage type, and a callback that writes exactly <see cref="ByteCount"/> bytes.</summary>
internal sealed record GgufTensor(string Name, long[] Dims, GgmlType Type, Action<Stream> WriteData)
{
    /// <summary>Elements in the tensor.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the tensor's data for its type.</summary>
    public long ByteCount => Type switch
    {
        GgmlType.F32 => ElementCount * 4,
        GgmlType.F16 or GgmlType.BF16 => ElementCount * 2,
        GgmlType.Q8_0 => ElementCount / GgufQuantization.Q8BlockSize * GgufQuantization.Q8BlockBytes,
        _ => throw new InvalidOperationException($"Unknown ggml type {Type}."),
    };
}

/// <summary>
/// The key/value metadata of a GGUF file, in insertion order, each value already typed as GGUF stores it
/// (u32, i32, f32, bool, string, u64 and arrays of i32, f32 and strings). Keys are unique.
/// </summary>
internal sealed class GgufMetadata
{
    // GGUF value types (gguf_type).
    internal const uint TypeUInt32 = 4, TypeInt32 = 5, TypeFloat32 = 6, TypeBool = 7, TypeString = 8, TypeArray = 9, TypeUInt64 = 10;

    private readonly List<(string Key, Action<BinaryWriter> Write)> _entries = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);

    /// <summary>Number of keys.</summary>
    public int Count => _entries.Count;

    /// <summary>Whether <paramref name="key"/> was added.</summary>
    public bool Contains(string key) => _keys.Contains(key);

    public void AddUInt32(string key, uint value) => Add(key, w => { w.Write(TypeUInt32); w.Write(value); });
    public void AddInt32(string key, int value) => Add(key, w => { w.Write(TypeInt32); w.Write(value); });
    public void AddUInt64(string key, ulong value) => Add(key, w => { w.Write(TypeUInt64); w.Write(value); });
    public void AddFloat32(string key, float value) => Add(key, w => { w.Write(TypeFloat32); w.Write(value); });
    public void AddBool(string key, bool value) => Add(key, w => { w.Write(TypeBool); w.Write((byte)(value ? 1 : 0)); });
    public void AddString(string key, string value) => Add(key, w => { w.Write(TypeString); WriteString(w, value); });

    public void AddStringArray(string key, IReadOnlyList<string> values) => Add(key, w =>
    {
        WriteArrayHeader(w, TypeString, values.Count);
        foreach (var v in values) WriteString(w, v);
    });

    public void AddFloat32Array(string key, IReadOnlyList<float> values) => Add(key, w =>
    {
        WriteArrayHeader(w, TypeFloat32, values.Count);
        foreach (var v in values) w.Write(v);
    });

    public void AddInt32Array(string key, IReadOnlyList<int> values) => Add(key, w =>
    {
        WriteArrayHeader(w, TypeInt32, values.Count);
        foreach (var v in values) w.Write(v);
    });

    internal void WriteTo(BinaryWriter w)
    {
        foreach (var (key, write) in _entries)
        {
            WriteString(w, key);
            write(w);
        }
    }

    private void Add(string key, Action<BinaryWriter> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (!_keys.Add(key)) throw new ArgumentException($"GGUF metadata key '{key}' was added twice.", nameof(key));
        _entries.Add((key, write));
    }

    private static void WriteArrayHeader(BinaryWriter w, uint elementType, int count)
    {
        w.Write(TypeArray);
        w.Write(elementType);
        w.Write((ulong)count);
    }

    internal static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}

/// <summary>
/// Writes GGUF version 3 files: the header (magic, version, tensor and key counts), the metadata, the tensor
/// descriptors (name, dimensions, type, offset), zero padding up to the alignment, then each tensor's data starting at
/// a multiple of the alignment. All integers and floats are little-endian.
/// </summary>
internal static class GgufWriter
{
    /// <summary>The file magic, "GGUF".</summary>
    public static ReadOnlySpan<byte> Magic => "GGUF"u8;

    /// <summary>The format version written.</summary>
    public const uint Version = 3;

    /// <summary>Alignment of the data section and of every tensor when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>Writes the whole file to <paramref name="stream"/>.</summary>
    /// <param name="stream">A writable stream positioned at the file's start.</param>
    /// <param name="metadata">Keys and values; <c>general.alignment</c> must be among them when <paramref name="alignment"/> is not 32.</param>
    /// <param name="tensors">Tensors in file order; names must be unique and shorter than 64 bytes (ggml's limit).</param>
    /// <param name="alignment">A power of two that is a multiple of 8.</param>
    /// <param name="onTensorWritten">Called after each tensor with its index.</param>
    /// <param name="cancellationToken">Checked before each tensor.</param>
    /// <exception cref="ArgumentException">Alignment, a name or a Q8_0 row length is invalid, or a tensor callback wrote the wrong byte count.</exception>
    public static void Write(Stream stream, GgufMetadata metadata, IReadOnlyList<GgufTensor> tensors, int alignment,
        Action<int>? onTensorWritten = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        CheckAlignment(alignment);
        if (alignment != DefaultAlignment && !metadata.Contains("general.alignment"))
            throw new ArgumentException($"Alignment {alignment} must be stated as general.alignment.", nameof(metadata));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (!names.Add(t.Name)) throw new ArgumentException($"GGUF tensor '{t.Name}' appears twice.", nameof(tensors));
            if (Encoding.UTF8.GetByteCount(t.Name) >= 64) throw new ArgumentException($"GGUF tensor name '{t.Name}' is 64 bytes or longer.", nameof(tensors));
            if (t.Dims.Length is < 1 or > 4 || t.Dims.Any(d => d <= 0))
                throw new ArgumentException($"GGUF tensor '{t.Name}' has dimensions [{string.Join(", ", t.Dims)}]; expected 1 to 4 positive sizes.", nameof(tensors));
            if (t.Type == GgmlType.Q8_0 && t.Dims[0] % GgufQuantization.Q8BlockSize != 0)
                throw new ArgumentException($"GGUF tensor '{t.Name}' has rows of {t.Dims[0]} values, not a multiple of {GgufQuantization.Q8BlockSize}, so it cannot be Q8_0.", nameof(tensors));
        }

        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(Version);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)metadata.Count);
        metadata.WriteTo(w);
        long offset = 0;
        foreach (var t in tensors)
        {
            GgufMetadata.WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (var d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset = AlignUp(offset + t.ByteCount, alignment);
        }
        w.Flush();
        Pad(stream, alignment);
        for (int i = 0; i < tensors.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var t = tensors[i];
            long before = stream.Position;
            t.WriteData(stream);
            long written = stream.Position - before;
            if (written != t.ByteCount)
                throw new ArgumentException($"GGUF tensor '{t.Name}' wrote {written} bytes; its type {t.Type} and dimensions need {t.ByteCount}.", nameof(tensors));
            Pad(stream, alignment);
            onTensorWritten?.Invoke(i);
        }
    }

    /// <summary>
    /// Writes <paramref name="path"/> through a temporary sibling file that is flushed to disk and renamed into place
    /// only when <paramref name="write"/> returns; on failure or cancellation the temporary file is deleted and any
    /// existing file at <paramref name="path"/> is untouched.
    /// </summary>
    /// <exception cref="IOException">The path is a folder, or the file exists and <paramref name="overwrite"/> is false.</exception>
    public static void WriteFileAtomically(string path, bool overwrite, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"Output '{full}' is a folder; expected a .gguf file path.");
        if (File.Exists(full) && !overwrite) throw new IOException($"Output file '{full}' already exists; pass --overwrite (Overwrite = true) to replace it.");
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            if (File.Exists(full) && !overwrite) throw new IOException($"Output file '{full}' appeared while it was being written; it was left as it is.");
            File.Move(temp, full, overwrite);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    internal static void CheckAlignment(int alignment)
    {
        if (alignment < 8 || alignment % 8 != 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "GGUF alignment must be a power of two and a multiple of 8 (default 32).");
    }

    internal static long AlignUp(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private static void Pad(Stream stream, int alignment)
    {
        long pad = AlignUp(stream.Position, alignment) - stream.Position;
        if (pad > 0) stream.Write(new byte[pad]);
    }
}

/// <summary>ggml's Q8_0 block format and float16/bfloat16 conversions, written from the format's definition.</summary>
internal static class GgufQuantization
{
    /// <summary>Values per Q8_0 block.</summary>
    public const int Q8BlockSize = 32;

    /// <summary>Bytes per Q8_0 block: a float16 scale and 32 signed bytes.</summary>
    public const int Q8BlockBytes = 2 + Q8BlockSize;

    /// <summary>
    /// Quantizes <paramref name="values"/> (a multiple of 32 long) into Q8_0 blocks: per block
    /// <c>d = max|x| / 127</c>, stored as float16, and <c>q = round(x / d)</c> (halves away from zero; 0 when d is 0).
    /// </summary>
    public static void QuantizeQ8(ReadOnlySpan<float> values, Span<byte> destination)
    {
        if (values.Length % Q8BlockSize != 0) throw new ArgumentException($"Q8_0 needs a multiple of {Q8BlockSize} values, got {values.Length}.", nameof(values));
        int blocks = values.Length / Q8BlockSize;
        if (destination.Length < blocks * Q8BlockBytes) throw new ArgumentException("Destination too small for the Q8_0 blocks.", nameof(destination));
        for (int b = 0; b < blocks; b++)
        {
            var block = values.Slice(b * Q8BlockSize, Q8BlockSize);
            var dst = destination.Slice(b * Q8BlockBytes, Q8BlockBytes);
            float amax = 0;
            foreach (var v in block) amax = Math.Max(amax, Math.Abs(v));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)d);
            for (int j = 0; j < Q8BlockSize; j++)
                dst[2 + j] = unchecked((byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero));
        }
    }
}
