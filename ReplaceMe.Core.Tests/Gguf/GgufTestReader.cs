using System.Text;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary>An independent GGUF v3 parser for the tests, written from the format's description (not from the library's writer).</summary>
internal sealed class GgufTestReader
{
    public sealed record TensorInfo(string Name, ulong[] Dims, uint Type, ulong Offset);

    public uint Version { get; private set; }
    public Dictionary<string, object> Metadata { get; } = new(StringComparer.Ordinal);
    public List<TensorInfo> Tensors { get; } = [];
    public long DataStart { get; private set; }
    public int Alignment { get; private set; } = 32;
    public byte[] Bytes { get; }

    public GgufTestReader(string path)
    {
        Bytes = File.ReadAllBytes(path);
        using var r = new BinaryReader(new MemoryStream(Bytes));
        Assert.Equal("GGUF", Encoding.ASCII.GetString(r.ReadBytes(4)));
        Version = r.ReadUInt32();
        ulong tensorCount = r.ReadUInt64(), kvCount = r.ReadUInt64();
        for (ulong i = 0; i < kvCount; i++)
        {
            var key = ReadString(r);
            Metadata.Add(key, ReadValue(r, r.ReadUInt32()));
        }
        if (Metadata.TryGetValue("general.alignment", out var a)) Alignment = (int)(uint)a;
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = ReadString(r);
            uint nd = r.ReadUInt32();
            var dims = new ulong[nd];
            for (int d = 0; d < nd; d++) dims[d] = r.ReadUInt64();
            Tensors.Add(new TensorInfo(name, dims, r.ReadUInt32(), r.ReadUInt64()));
        }
        long pos = r.BaseStream.Position;
        DataStart = (pos + Alignment - 1) / Alignment * Alignment;
        for (long p = pos; p < DataStart; p++) Assert.Equal(0, Bytes[p]);
    }

    public TensorInfo Tensor(string name) => Tensors.Single(t => t.Name == name);

    public ReadOnlySpan<byte> Data(string name, long length) => Bytes.AsSpan((int)(DataStart + (long)Tensor(name).Offset), (int)length);

    public float[] F32(string name)
    {
        var t = Tensor(name);
        Assert.Equal(0u, t.Type);
        long n = t.Dims.Aggregate(1UL, (x, y) => x * y) is var c ? (long)c : 0;
        var data = Data(name, n * 4);
        var result = new float[n];
        for (int i = 0; i < n; i++) result[i] = BitConverter.ToSingle(data.Slice(i * 4, 4));
        return result;
    }

    public T Get<T>(string key) => (T)Metadata[key];

    private static string ReadString(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)r.ReadUInt64())));

    private static object ReadValue(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        5 => r.ReadInt32(),
        6 => r.ReadSingle(),
        7 => r.ReadByte() switch { 0 => false, 1 => true, var b => throw new InvalidDataException($"bool byte {b}") },
        8 => ReadString(r),
        9 => ReadArray(r),
        10 => r.ReadUInt64(),
        11 => r.ReadInt64(),
        12 => r.ReadDouble(),
        _ => throw new InvalidDataException($"GGUF value type {type}"),
    };

    private static object[] ReadArray(BinaryReader r)
    {
        uint type = r.ReadUInt32();
        ulong n = r.ReadUInt64();
        var items = new object[n];
        for (ulong i = 0; i < n; i++) items[i] = ReadValue(r, type);
        return items;
    }
}
