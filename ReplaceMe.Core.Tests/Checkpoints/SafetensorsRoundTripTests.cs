using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class SafetensorsRoundTripTests
{
    public SafetensorsRoundTripTests() => TorchRuntime.EnsureLoaded();

    private static Dictionary<string, Tensor> SampleTensors()
    {
        var g = new torch.Generator(1234);
        return new Dictionary<string, Tensor>
        {
            ["model.layers.0.mlp.down_proj.weight"] = torch.randn([7, 5], generator: g),
            ["model.layers.0.self_attn.q_proj.weight"] = torch.randn([4, 6], generator: g).to(ScalarType.BFloat16),
            ["model.norm.weight"] = torch.randn([13], generator: g).to(ScalarType.Float16),
            ["lm_head.weight"] = torch.randn([3, 2, 2], generator: g, dtype: ScalarType.Float64),
            ["positions"] = torch.tensor(new long[] { long.MinValue, -1, 0, 1, long.MaxValue }),
            ["scalar"] = torch.tensor(3.5f),
            ["empty"] = torch.zeros([0, 4]),
        };
    }

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    [Fact]
    public void Write_then_read_is_bit_exact_for_every_dtype()
    {
        using var dir = TestPaths.NewTempDir();
        var tensors = SampleTensors();
        SafetensorsWriter.Write(dir.Path, tensors);
        Assert.True(File.Exists(dir.Combine("model.safetensors")));
        Assert.False(File.Exists(dir.Combine("model.safetensors.index.json")));
        Assert.Empty(Directory.GetFiles(dir.Path, ".*")); // no temporary files left

        using var reader = SafetensorsReader.Open(dir.Path);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), reader.Names);
        Assert.Equal("pt", reader.Metadata["format"]);
        foreach (var (name, expected) in tensors)
        {
            using var actual = reader.Read(name);
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(Bytes(expected), Bytes(actual));
            Assert.Equal(expected.shape, reader.GetInfo(name).Shape);
        }
        Assert.Equal("BF16", reader.GetInfo("model.layers.0.self_attn.q_proj.weight").DType);
        Assert.Equal("F16", reader.GetInfo("model.norm.weight").DType);
        Assert.Equal("F64", reader.GetInfo("lm_head.weight").DType);
        Assert.Equal("I64", reader.GetInfo("positions").DType);
    }

    [Fact]
    public void Bf16_read_as_f32_equals_torch_conversion_and_the_bit_pattern()
    {
        using var dir = TestPaths.NewTempDir();
        // bf16 is the upper half of an f32: 0x3FC0 = 1.5, 0xC020 = -2.5, 0x7F80 = +inf.
        // All four values are exactly representable in bf16, so the f32 -> bf16 cast below is lossless.
        var exact = new[] { 1.5f, -2.5f, float.PositiveInfinity, BitConverter.Int32BitsToSingle(0x00010000) };
        using var bf = torch.tensor(exact).to(ScalarType.BFloat16);
        var storedBits = Bytes(bf);
        Assert.Equal(new byte[] { 0xC0, 0x3F, 0x20, 0xC0, 0x80, 0x7F, 0x01, 0x00 }, storedBits);
        SafetensorsWriter.Write(dir.Path, [new("w", bf)]);
        using var reader = SafetensorsReader.Open(Path.Combine(dir.Path, "model.safetensors"));
        using var f32 = reader.Read("w", ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, f32.dtype);
        var values = f32.data<float>().ToArray();
        Assert.Equal(1.5f, values[0]);
        Assert.Equal(-2.5f, values[1]);
        Assert.True(float.IsPositiveInfinity(values[2]));
        Assert.Equal(BitConverter.Int32BitsToSingle(0x00010000), values[3]); // subnormal kept exactly
        using var torchWay = bf.to(ScalarType.Float32);
        Assert.Equal(Bytes(torchWay), Bytes(f32));
    }

    [Fact]
    public unsafe void Chunked_copy_matches_a_single_copy()
    {
        using var t = torch.arange(0, 1000, dtype: ScalarType.Int32);
        var bytes = Bytes(t);
        fixed (byte* p = bytes)
        {
            using var back = TensorBytes.FromMemory(p, ScalarType.Int32, 4, [10, 100], chunkBytes: 12);
            Assert.Equal(bytes, Bytes(back));
        }
        using var ms = new MemoryStream();
        Assert.Equal(4000, TensorBytes.Write(t.view(10, 100).t(), ms, chunkBytes: 20)); // non-contiguous input
        using var expected = t.view(10, 100).t().contiguous();
        Assert.Equal(Bytes(expected), ms.ToArray());
    }
}
