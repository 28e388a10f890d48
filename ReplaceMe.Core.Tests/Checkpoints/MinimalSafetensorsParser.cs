using System.Buffers.Binary;
using System.Text.Json;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>
/// An independent, deliberately small safetensors header parser (written from the format description, sharing no
/// code with the library) used to check what the writer produces.
/// </summary>
internal static class MinimalSafetensorsParser
{
    public sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End);

    public sealed record Parsed(long HeaderLength, Dictionary<string, string> Metadata, List<Entry> Entries, long DataLength);

    public static Parsed Parse(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0, 8));
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var meta = new Dictionary<string, string>();
        var entries = new List<Entry>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject()) meta[m.Name] = m.Value.GetString()!;
                continue;
            }
            var off = p.Value.GetProperty("data_offsets");
            entries.Add(new Entry(p.Name, p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                off[0].GetInt64(), off[1].GetInt64()));
        }
        return new Parsed(n, meta, entries, bytes.Length - 8 - n);
    }

    /// <summary>Asserts the layout rules our writer promises.</summary>
    public static Parsed ParseAndCheckLayout(string path)
    {
        var p = Parse(path);
        Assert.Equal(0, (8 + p.HeaderLength) % 8);
        Assert.Equal("pt", p.Metadata["format"]);
        var sizes = new Dictionary<string, int> { ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["F64"] = 8, ["I64"] = 8, ["I32"] = 4 };
        long expectedBegin = 0;
        // Contiguous, in ordinal name order, covering the data section exactly.
        foreach (var e in p.Entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            Assert.Equal(expectedBegin, e.Begin);
            Assert.Equal(e.Shape.Aggregate(1L, (a, b) => a * b) * sizes[e.DType], e.End - e.Begin);
            expectedBegin = e.End;
        }
        Assert.Equal(p.DataLength, expectedBegin);
        return p;
    }
}
