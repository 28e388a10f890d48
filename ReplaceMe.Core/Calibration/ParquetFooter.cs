namespace ReplaceMe.Core.Calibration;

/// <summary>
/// Checks that a Parquet file's footer is well-formed Thrift (compact protocol) before Parquet.Net parses it: valid
/// field and element types, lengths and counts within the footer, bounded nesting. Parquet.Net's own parser can spin
/// forever on some corrupt footers (found by the calibration fuzz test), so a file that fails here is refused first.
/// </summary>
internal static class ParquetFooter
{
    private const int MaxDepth = 64;

    /// <summary>Throws unless <paramref name="stream"/> ends in a well-formed footer ("PAR1" at both ends, a length in
    /// range, a Thrift struct that ends inside it). The stream's position is restored.</summary>
    /// <exception cref="CheckpointFormatException">The footer is malformed; the message names <paramref name="path"/>.</exception>
    public static void Check(Stream stream, string path)
    {
        long position = stream.Position;
        try
        {
            long length = stream.Length;
            if (length < 12) throw Bad(path, $"{length} bytes is too short for a Parquet file");
            Span<byte> tail = stackalloc byte[8];
            stream.Position = length - 8;
            stream.ReadExactly(tail);
            if (!tail[4..].SequenceEqual("PAR1"u8)) throw Bad(path, "the file does not end in the 'PAR1' magic");
            long metaLength = BitConverter.ToUInt32(tail);
            if (metaLength == 0 || metaLength > length - 12) throw Bad(path, $"footer length {metaLength} does not fit the {length}-byte file");
            var meta = new byte[metaLength];
            stream.Position = length - 8 - metaLength;
            stream.ReadExactly(meta);
            int pos = 0;
            SkipStruct(meta, ref pos, 0, path);
        }
        finally
        {
            stream.Position = position;
        }
    }

    private static CheckpointFormatException Bad(string path, string what) =>
        new($"{path}: not a readable Parquet file: {what} (corrupt footer metadata).");

    private static byte Byte(byte[] b, ref int pos, string path) =>
        pos < b.Length ? b[pos++] : throw Bad(path, "the footer metadata ends in the middle of a value");

    private static ulong Varint(byte[] b, ref int pos, string path)
    {
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            byte x = Byte(b, ref pos, path);
            value |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return value;
        }
        throw Bad(path, "a varint in the footer metadata is longer than 10 bytes");
    }

    private static void Skip(byte[] b, ref int pos, int type, int depth, string path)
    {
        if (depth > MaxDepth) throw Bad(path, $"the footer metadata nests deeper than {MaxDepth}");
        switch (type)
        {
            case 1 or 2: return;                                     // bool in a field header
            case 3: Byte(b, ref pos, path); return;                   // byte
            case 4 or 5 or 6: Varint(b, ref pos, path); return;       // i16, i32, i64 (zigzag)
            case 7: Advance(b, ref pos, 8, path); return;             // double
            case 8: Advance(b, ref pos, Varint(b, ref pos, path), path); return; // binary
            case 9 or 10:                                             // list, set
                byte header = Byte(b, ref pos, path);
                ulong count = (ulong)(header >> 4);
                if (count == 15) count = Varint(b, ref pos, path);
                int element = header & 0x0F;
                if (count > (ulong)(b.Length - pos)) throw Bad(path, $"a list claims {count} elements in {b.Length - pos} remaining bytes");
                for (ulong i = 0; i < count; i++)
                    if (element is 1 or 2) Byte(b, ref pos, path); else Skip(b, ref pos, element, depth + 1, path);
                return;
            case 11:                                                  // map
                ulong pairs = Varint(b, ref pos, path);
                if (pairs == 0) return;
                if (pairs > (ulong)(b.Length - pos)) throw Bad(path, $"a map claims {pairs} entries in {b.Length - pos} remaining bytes");
                byte types = Byte(b, ref pos, path);
                for (ulong i = 0; i < pairs; i++)
                {
                    Skip(b, ref pos, types >> 4, depth + 1, path);
                    Skip(b, ref pos, types & 0x0F, depth + 1, path);
                }
                return;
            case 12: SkipStruct(b, ref pos, depth + 1, path); return;
            default: throw Bad(path, $"Thrift type {type} is not a valid type");
        }
    }

    private static void SkipStruct(byte[] b, ref int pos, int depth, string path)
    {
        if (depth > MaxDepth) throw Bad(path, $"the footer metadata nests deeper than {MaxDepth}");
        while (true)
        {
            byte header = Byte(b, ref pos, path);
            if (header == 0) return; // STOP
            if ((header >> 4) == 0) Varint(b, ref pos, path); // explicit field id
            Skip(b, ref pos, header & 0x0F, depth, path);
        }
    }

    private static void Advance(byte[] b, ref int pos, ulong count, string path)
    {
        if (count > (ulong)(b.Length - pos)) throw Bad(path, $"a value claims {count} bytes in {b.Length - pos} remaining bytes");
        pos += (int)count;
    }
}
