using System.Text.Json;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class SafetensorsShardingTests
{
    public SafetensorsShardingTests() => TorchRuntime.EnsureLoaded();

    private static Dictionary<string, Tensor> Layers(int count, int elements)
    {
        var g = new torch.Generator(7);
        return Enumerable.Range(0, count).ToDictionary(i => $"model.layers.{i}.mlp.up_proj.weight", _ => torch.randn([elements], generator: g));
    }

    private static byte[] Bytes(Tensor t) => t.contiguous().bytes.ToArray();

    [Fact]
    public void Small_max_shard_gives_consistent_shards_and_index()
    {
        using var dir = TestPaths.NewTempDir();
        var tensors = Layers(5, 100); // 400 bytes each
        tensors["lm_head.weight"] = torch.randn([600]); // 2400 bytes: larger than a shard, gets its own
        SafetensorsWriter.Write(dir.Path, tensors, maxShardBytes: 1000, metadata: new Dictionary<string, string> { ["source"] = "test" });

        Assert.False(File.Exists(dir.Combine("model.safetensors")));
        using var index = JsonDocument.Parse(File.ReadAllBytes(dir.Combine("model.safetensors.index.json")));
        Assert.Equal(2400 + 5 * 400, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(tensors.Keys.Order(), weightMap.Keys.Order());

        // Ordinal order: lm_head (2400, alone), layers 0+1, 2+3, 4 -> 4 shards.
        var shardFiles = Directory.GetFiles(dir.Path, "*.safetensors").Select(f => Path.GetFileName(f)).Order().ToList();
        Assert.Equal(["model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
            "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"], shardFiles);
        Assert.Equal(shardFiles, weightMap.Values.Distinct().Order().ToList());
        long total = 0;
        foreach (var shard in shardFiles)
        {
            var parsed = MinimalSafetensorsParser.ParseAndCheckLayout(dir.Combine(shard));
            Assert.Equal("test", parsed.Metadata["source"]);
            foreach (var e in parsed.Entries) Assert.Equal(shard, weightMap[e.Name]); // every entry lives where the index says
            Assert.Equal(weightMap.Count(kv => kv.Value == shard), parsed.Entries.Count);
            Assert.True(parsed.DataLength <= 1000 || parsed.Entries.Count == 1);
            total += parsed.DataLength;
        }
        Assert.Equal(4400, total);

        using var reader = SafetensorsReader.Open(dir.Combine("model.safetensors.index.json"));
        foreach (var (name, t) in tensors)
        {
            using var back = reader.Read(name);
            Assert.Equal(Bytes(t), Bytes(back));
            Assert.Equal(dir.Combine(weightMap[name]), reader.GetInfo(name).File);
        }
    }

    [Fact]
    public void Single_file_header_parses_with_the_independent_parser()
    {
        using var dir = TestPaths.NewTempDir();
        var tensors = new Dictionary<string, Tensor>
        {
            ["b"] = torch.ones([3], ScalarType.Float16),
            ["a"] = torch.ones([2, 3], ScalarType.BFloat16),
            ["c"] = torch.arange(5, dtype: ScalarType.Int64),
            ["d"] = torch.ones([1], ScalarType.Float64),
        };
        SafetensorsWriter.Write(dir.Path, tensors);
        var p = MinimalSafetensorsParser.ParseAndCheckLayout(dir.Combine("model.safetensors"));
        Assert.Equal(["a", "b", "c", "d"], p.Entries.Select(e => e.Name));
        Assert.Equal(new long[] { 2, 3 }, p.Entries[0].Shape);
        Assert.Equal("BF16", p.Entries[0].DType);
        var raw = File.ReadAllBytes(dir.Combine("model.safetensors"));
        var headerText = System.Text.Encoding.UTF8.GetString(raw, 8, (int)p.HeaderLength);
        Assert.Equal(headerText.LastIndexOf('}') + 1, headerText.TrimEnd(' ').Length); // only spaces pad after the object
    }

    [Fact]
    public void Rewriting_a_folder_removes_the_stale_layout()
    {
        using var dir = TestPaths.NewTempDir();
        var tensors = Layers(4, 100);
        SafetensorsWriter.Write(dir.Path, tensors, maxShardBytes: 500);
        Assert.True(File.Exists(dir.Combine("model.safetensors.index.json")));
        File.WriteAllText(dir.Combine("tokenizer.json"), "{}");
        SafetensorsWriter.Write(dir.Path, tensors);
        Assert.Equal(["model.safetensors", "tokenizer.json"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order());
        using var reader = SafetensorsReader.Open(dir.Path);
        Assert.Equal(4, reader.Names.Count);
    }

    [Fact]
    public void Writer_rejects_bad_arguments()
    {
        using var dir = TestPaths.NewTempDir();
        using var t = torch.ones(2);
        Assert.Throws<ArgumentOutOfRangeException>(() => SafetensorsWriter.Write(dir.Path, [new("a", t)], maxShardBytes: 0));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.Path, [new("", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.Path, [new("a", t), new("a", t)]));
        using var c = torch.ones(2, ScalarType.ComplexFloat32);
        Assert.Throws<UnsupportedModelException>(() => SafetensorsWriter.Write(dir.Path, [new("z", c)]));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
