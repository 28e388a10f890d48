using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>Throws thousands of mutated files at the reader: each either opens and reads, or raises CheckpointFormatException.</summary>
public class SafetensorsFuzzTests
{
    private const int Iterations = 3000;

    public SafetensorsFuzzTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Mutated_files_raise_only_CheckpointFormatException()
    {
        var rng = new Random(20251128);
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("fuzz.safetensors");
        var valid = SafetensorsFiles.Build(SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes);
        int opened = 0, refused = 0;
        var unexpected = new List<string>();
        for (int i = 0; i < Iterations; i++)
        {
            int kind = i % 4;
            byte[] file = kind switch
            {
                0 => FlipBytes(valid, rng),
                1 => valid[..rng.Next(valid.Length)],
                2 => MutateJson(rng),
                _ => WrongLengthPrefix(valid, rng),
            };
            File.WriteAllBytes(path, file);
            try
            {
                using var reader = SafetensorsReader.Open(path);
                foreach (var name in reader.Names)
                    using (reader.Read(name)) { }
                opened++;
            }
            catch (CheckpointFormatException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                unexpected.Add($"iteration {i} (kind {kind}): {ex.GetType().Name}: {ex.Message}");
            }
        }
        Assert.Empty(unexpected);
        // Both outcomes must really occur, otherwise the mutations test nothing.
        Assert.True(opened > 50, $"only {opened} mutated files opened");
        Assert.True(refused > 1000, $"only {refused} mutated files were refused");
    }

    private static byte[] FlipBytes(byte[] valid, Random rng)
    {
        var copy = (byte[])valid.Clone();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        for (int n = rng.Next(1, 4); n > 0; n--)
            copy[rng.Next(headerEnd)] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)(copy[rng.Next(headerEnd)] ^ (1 << rng.Next(8)));
        return copy;
    }

    private static byte[] WrongLengthPrefix(byte[] valid, Random rng)
    {
        var copy = (byte[])valid.Clone();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(valid);
        ulong[] choices = [n + (ulong)rng.Next(1, 40), n - (ulong)rng.Next(1, (int)n), (ulong)rng.NextInt64(), ulong.MaxValue - (ulong)rng.Next(100), 0];
        BinaryPrimitives.WriteUInt64LittleEndian(copy, choices[rng.Next(choices.Length)]);
        return copy;
    }

    private static readonly string[] DTypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E5M2", "", "f32"];

    /// <summary>Re-serializes a semantically mutated header with a correct length prefix.</summary>
    private static byte[] MutateJson(Random rng)
    {
        var root = JsonNode.Parse(SafetensorsFiles.ValidHeader)!.AsObject();
        if (rng.Next(4) == 0)
        {
            // Benign edits (other metadata, extra trailing data bytes) keep the success path exercised too.
            root["__metadata__"] = new JsonObject { ["format"] = "pt", [$"k{rng.Next(9)}"] = "v" };
            return SafetensorsFiles.Build(Encoding.UTF8.GetBytes(root.ToJsonString()), SafetensorsFiles.ValidDataBytes + rng.Next(0, 5));
        }
        for (int n = rng.Next(1, 3); n > 0; n--)
        {
            var tensor = root[rng.Next(2) == 0 ? "a" : "b"]!.AsObject();
            switch (rng.Next(7))
            {
                case 0: tensor["dtype"] = DTypes[rng.Next(DTypes.Length)]; break;
                case 1: tensor["shape"] = RandomArray(rng); break;
                case 2: tensor["data_offsets"] = RandomArray(rng); break;
                case 3: tensor.Remove(new[] { "dtype", "shape", "data_offsets" }[rng.Next(3)]); break;
                case 4: tensor[new[] { "dtype", "shape", "data_offsets" }[rng.Next(3)]] = RandomScalar(rng); break;
                case 5: root["__metadata__"] = rng.Next(2) == 0 ? RandomScalar(rng) : new JsonObject { ["format"] = RandomScalar(rng) }; break;
                default: root[$"extra{rng.Next(3)}"] = new JsonObject { ["dtype"] = "U8", ["shape"] = RandomArray(rng), ["data_offsets"] = RandomArray(rng) }; break;
            }
        }
        var header = Encoding.UTF8.GetBytes(root.ToJsonString());
        return SafetensorsFiles.Build(header, SafetensorsFiles.ValidDataBytes + rng.Next(-4, 5));
    }

    private static JsonArray RandomArray(Random rng)
    {
        var arr = new JsonArray();
        for (int n = rng.Next(0, 4); n > 0; n--) arr.Add(RandomNumber(rng));
        return arr;
    }

    private static JsonNode RandomNumber(Random rng) => rng.Next(6) switch
    {
        0 => JsonValue.Create(-rng.Next(1, 100)),
        1 => JsonValue.Create(rng.NextInt64()),
        2 => JsonValue.Create(rng.NextDouble() * 30),
        3 => JsonValue.Create(long.MaxValue),
        _ => JsonValue.Create(rng.Next(0, 30)),
    };

    private static JsonNode? RandomScalar(Random rng) => rng.Next(5) switch
    {
        0 => null,
        1 => JsonValue.Create("x"),
        2 => JsonValue.Create(true),
        3 => new JsonObject(),
        _ => RandomNumber(rng),
    };
}
