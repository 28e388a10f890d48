using System.Text.Json;
using System.Text.RegularExpressions;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// Writes tensors as a Hugging Face safetensors checkpoint: one <c>model.safetensors</c> when everything fits in one
/// shard, else <c>model-0000i-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c>.
/// </summary>
/// <remarks>
/// Tensors are stored contiguously in ordinal name order; the JSON header is padded with spaces to a multiple of
/// 8 bytes and its <c>__metadata__</c> always holds <c>"format": "pt"</c>. Each file is written under a temporary
/// name in the same folder and renamed when complete; checkpoint files of an earlier layout are then removed.
/// </remarks>
public static partial class SafetensorsWriter
{
    /// <summary>Default largest shard (5 GiB, as <c>transformers</c>).</summary>
    public const long DefaultMaxShardBytes = 5L << 30;

    /// <summary>Writes <paramref name="tensors"/> into <paramref name="folder"/> (created if missing).</summary>
    /// <param name="folder">Destination folder.</param>
    /// <param name="tensors">Name → tensor (any device; F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL).</param>
    /// <param name="maxShardBytes">Largest shard in bytes; a single larger tensor gets a shard of its own.</param>
    /// <param name="metadata">Extra <c>__metadata__</c> entries (the <c>format</c> entry is always <c>pt</c>).</param>
    /// <exception cref="ArgumentException">A name is empty or repeated, or <paramref name="maxShardBytes"/> is not positive.</exception>
    /// <exception cref="UnsupportedModelException">A tensor has a dtype safetensors cannot hold here.</exception>
    public static void Write(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors, long maxShardBytes = DefaultMaxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(folder, tensors, maxShardBytes, metadata, castFloatingTo: null, CancellationToken.None);

    /// <summary>As the public overload; floating-point tensors are stored as <paramref name="castFloatingTo"/> when given.</summary>
    internal static void Write(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata, ScalarType? castFloatingTo, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        TorchRuntime.EnsureLoaded();
        var entries = Entries(tensors, castFloatingTo);
        var meta = Metadata(metadata);

        var shards = PlanShards(entries.Values, maxShardBytes);
        Directory.CreateDirectory(folder);
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (shards.Count == 1)
        {
            WriteAtomically(folder, SafetensorsReader.SingleFileName, s => WriteFile(s, shards[0], meta, cancellationToken));
            written.Add(SafetensorsReader.SingleFileName);
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < shards.Count; i++)
            {
                var fileName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                WriteAtomically(folder, fileName, s => WriteFile(s, shards[i], meta, cancellationToken));
                written.Add(fileName);
                foreach (var e in shards[i]) weightMap[e.Name] = fileName;
            }
            long total = entries.Values.Sum(e => e.Bytes);
            WriteAtomically(folder, SafetensorsReader.IndexFileName, s => WriteIndex(s, total, weightMap));
            written.Add(SafetensorsReader.IndexFileName);
        }
        RemoveStaleCheckpointFiles(folder, written);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> as one safetensors file <paramref name="fileName"/> in <paramref name="folder"/>
    /// (through a temporary sibling renamed when complete); checkpoint files already there are left alone.
    /// </summary>
    internal static void WriteSingleFile(string folder, string fileName, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentNullException.ThrowIfNull(tensors);
        TorchRuntime.EnsureLoaded();
        var entries = Entries(tensors, castFloatingTo: null);
        var meta = Metadata(metadata);
        Directory.CreateDirectory(folder);
        WriteAtomically(folder, fileName, s => WriteFile(s, [.. entries.Values], meta, cancellationToken));
    }

    private static SortedDictionary<string, Entry> Entries(IEnumerable<KeyValuePair<string, Tensor>> tensors, ScalarType? castFloatingTo)
    {
        var entries = new SortedDictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentException.ThrowIfNullOrEmpty(name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            var stored = castFloatingTo is ScalarType cast && tensor.is_floating_point() ? cast : tensor.dtype;
            var (dtype, size) = SafetensorsDType.FromScalarType(stored, name);
            if (!entries.TryAdd(name, new Entry(name, tensor, stored, dtype, tensor.shape, tensor.numel() * size)))
                throw new ArgumentException($"Tensor name '{name}' appears twice.", nameof(tensors));
        }
        return entries;
    }

    private static SortedDictionary<string, string> Metadata(IReadOnlyDictionary<string, string>? metadata)
    {
        var meta = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        meta["format"] = "pt";
        return meta;
    }

    private sealed record Entry(string Name, Tensor Tensor, ScalarType StoredType, string DType, long[] Shape, long Bytes);

    private static List<List<Entry>> PlanShards(IEnumerable<Entry> entries, long maxShardBytes)
    {
        var shards = new List<List<Entry>> { new() };
        long current = 0;
        foreach (var e in entries)
        {
            if (shards[^1].Count > 0 && current + e.Bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(e);
            current += e.Bytes;
        }
        return shards;
    }

    private static void WriteFile(Stream stream, List<Entry> entries, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        var header = BuildHeader(entries, metadata);
        Span<byte> prefix = stackalloc byte[8];
        BitConverter.TryWriteBytes(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var e in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long n = TensorBytes.Write(e.Tensor, stream, e.StoredType);
            if (n != e.Bytes) throw new InvalidOperationException($"Tensor '{e.Name}' changed size while being written.");
        }
    }

    /// <summary>The UTF-8 header JSON, space-padded so that the data section starts on an 8-byte boundary.</summary>
    private static byte[] BuildHeader(IReadOnlyList<Entry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var e in entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType);
                w.WriteStartArray("shape");
                foreach (var d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.Bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.Bytes;
            }
            w.WriteEndObject();
        }
        int padded = (int)((ms.Length + 7) / 8 * 8);
        while (ms.Length < padded) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static void WriteIndex(Stream stream, long totalSize, IReadOnlyDictionary<string, string> weightMap)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("metadata");
        w.WriteNumber("total_size", totalSize);
        w.WriteEndObject();
        w.WriteStartObject("weight_map");
        foreach (var (k, v) in weightMap) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Writes <paramref name="fileName"/> in <paramref name="folder"/> via a temporary sibling renamed when complete.</summary>
    internal static void WriteAtomically(string folder, string fileName, Action<Stream> write)
    {
        var final = Path.Combine(folder, fileName);
        var temp = Path.Combine(folder, $".{fileName}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, final, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static void RemoveStaleCheckpointFiles(string folder, HashSet<string> written)
    {
        foreach (var path in Directory.EnumerateFiles(folder))
        {
            var name = Path.GetFileName(path);
            if (!written.Contains(name) && CheckpointFilePattern().IsMatch(name)) File.Delete(path);
        }
    }

    [GeneratedRegex(@"^model(-\d{5}-of-\d{5})?\.safetensors$|^model\.safetensors\.index\.json$")]
    private static partial Regex CheckpointFilePattern();
}
