using System.Text;
using System.Text.Json;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// Parses and validates a safetensors header completely before any tensor byte is read: length prefix within the
/// file and under <see cref="MaxHeaderBytes"/>, strict UTF-8 JSON object, typed fields, known dtype, offsets ordered,
/// tiling the data section exactly (no gap, overlap or trailing bytes), byte count equal to shape × element size.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>Upper bound on the JSON header (the reference implementation uses 100 MB as well).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Most dimensions accepted for one tensor (a sanity bound; checkpoints use at most a handful).</summary>
    public const int MaxRank = 32;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private SafetensorsHeader(long dataStart, Dictionary<string, SafetensorInfo> tensors, Dictionary<string, string> metadata)
    {
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Absolute file offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    public IReadOnlyDictionary<string, SafetensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads and validates the header of <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointFormatException">The file is missing, truncated or its header is invalid; the message names the file and tensor.</exception>
    public static SafetensorsHeader Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException($"Safetensors file '{path}' does not exist.");
        try
        {
            using var stream = InputFile.OpenRegular(path, InputFile.Streamed, "Safetensors file");
            long fileLength = stream.Length;
            if (fileLength < 8)
                throw new CheckpointFormatException($"Safetensors file '{path}' is truncated: {fileLength} bytes, less than the 8-byte header length.");
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BitConverter.ToUInt64(prefix); // little-endian on every supported platform
            if (headerLength > MaxHeaderBytes)
                throw new CheckpointFormatException($"Safetensors file '{path}': header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit.");
            if ((long)headerLength > fileLength - 8)
                throw new CheckpointFormatException($"Safetensors file '{path}' is truncated: header length {headerLength} runs past the end of the {fileLength}-byte file.");
            var bytes = new byte[(int)headerLength];
            stream.ReadExactly(bytes);
            long dataStart = 8 + (long)headerLength;
            return Parse(bytes, fileLength - dataStart, dataStart, path);
        }
        catch (IOException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{path}' could not be read: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{path}' could not be read: {ex.Message}", ex);
        }
    }

    internal static SafetensorsHeader Parse(byte[] headerBytes, long dataLength, long dataStart, string path)
    {
        string text;
        try
        {
            text = StrictUtf8.GetString(headerBytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{path}': header is not valid UTF-8.", ex);
        }
        if (!text.StartsWith('{'))
            throw new CheckpointFormatException($"Safetensors file '{path}': the header does not start with '{{' (not a safetensors file, or its header length is off).");
        JsonDocument doc;
        try
        {
            // Writers pad the header with trailing spaces; JSON allows trailing whitespace.
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"Safetensors file '{path}': header is not valid JSON: {ex.Message}", ex);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"Safetensors file '{path}': header must be a JSON object, found {root.ValueKind}.");
            var tensors = new Dictionary<string, SafetensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var prop in root.EnumerateObject())
            {
                InputFile.RefuseDuplicateKeys(prop.Value, $"Safetensors file '{path}', entry '{prop.Name}'");
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata) throw new CheckpointFormatException($"Safetensors file '{path}': '__metadata__' appears twice.");
                    sawMetadata = true;
                    ReadMetadata(prop.Value, metadata, path);
                    continue;
                }
                if (tensors.ContainsKey(prop.Name))
                    throw new CheckpointFormatException($"Safetensors file '{path}': tensor '{prop.Name}' appears twice in the header.");
                tensors.Add(prop.Name, ReadEntry(prop.Name, prop.Value, dataLength, path));
            }
            CheckTiling(tensors.Values, dataLength, path);
            return new SafetensorsHeader(dataStart, tensors, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException($"Safetensors file '{path}': '__metadata__' must be an object of strings.");
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException($"Safetensors file '{path}': '__metadata__.{p.Name}' must be a string, found {p.Value.ValueKind}.");
            metadata[p.Name] = p.Value.GetString()!;
        }
    }

    private static SafetensorInfo ReadEntry(string name, JsonElement e, long dataLength, string path)
    {
        CheckpointFormatException Bad(string what) => new($"Safetensors file '{path}', tensor '{name}': {what}.");
        if (e.ValueKind != JsonValueKind.Object) throw Bad($"entry must be an object, found {e.ValueKind}");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad("'dtype' must be a string");
        var dtype = dt.GetString()!;
        if (!SafetensorsDType.TryGet(dtype, out _, out int elementSize))
            throw Bad($"unknown or unsupported dtype '{dtype}' (supported: {string.Join(", ", SafetensorsDType.Names)})");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad("'shape' must be an array of integers");
        if (sh.GetArrayLength() > MaxRank) throw Bad($"shape has {sh.GetArrayLength()} dimensions, more than {MaxRank}");
        var shape = new long[sh.GetArrayLength()];
        long elements = 1, nonZeroProduct = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0) throw Bad("'shape' must hold non-negative integers");
            shape[i++] = dim;
            // Strides are products of dims even when another dim is 0; keep them within long as torch needs.
            try { nonZeroProduct = checked(nonZeroProduct * Math.Max(dim, 1)); }
            catch (OverflowException) { throw Bad("shape is too large"); }
            elements *= dim;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad("'data_offsets' must be an array of two integers");
        if (!TryGetNonNegative(off[0], out long begin) || !TryGetNonNegative(off[1], out long end))
            throw Bad("'data_offsets' must hold two non-negative integers");
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] are out of order");
        if (end > dataLength) throw Bad($"data_offsets [{begin}, {end}] run past the {dataLength}-byte data section (file truncated?)");
        long expected;
        try { expected = checked(elements * elementSize); }
        catch (OverflowException) { throw Bad("shape has too many elements"); }
        if (end - begin != expected)
            throw Bad($"holds {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");
        return new SafetensorInfo(name, dtype, shape, path) { Begin = begin, End = end };
    }

    private static bool TryGetNonNegative(JsonElement e, out long value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value) && value >= 0;
    }

    /// <summary>
    /// The tensors must tile the data section exactly, as the safetensors reference requires: sorted by offset, each
    /// starts where the previous one ended, the first at 0 and the last ending at the end of the file. A gap, an overlap
    /// or trailing bytes mean a corrupt or shifted header (a header length a few bytes off moves every tensor).
    /// </summary>
    private static void CheckTiling(IEnumerable<SafetensorInfo> tensors, long dataLength, string path)
    {
        long expected = 0;
        SafetensorInfo? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < expected)
                throw new CheckpointFormatException(
                    $"Safetensors file '{path}': tensors '{previous!.Name}' [{previous.Begin}, {previous.End}] and '{t.Name}' [{t.Begin}, {t.End}] overlap.");
            if (t.Begin > expected)
                throw new CheckpointFormatException(
                    $"Safetensors file '{path}': bytes [{expected}, {t.Begin}) of the data section belong to no tensor (before '{t.Name}'); " +
                    "tensors must tile the data section, so the header is corrupt or its length is off.");
            expected = t.End;
            previous = t;
        }
        if (expected != dataLength)
            throw new CheckpointFormatException(
                $"Safetensors file '{path}': the tensors end at byte {expected} of the data section but the file holds {dataLength} data bytes; " +
                "the header is corrupt or its length is off.");
    }
}
