using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>
/// Seeded mutation fuzzing of <c>model.safetensors.index.json</c> beside real shards: each mutated index either opens
/// and reads every tensor, or raises <see cref="CheckpointFormatException"/>; the seed and case are printed on failure.
/// </summary>
public class ShardIndexFuzzTests
{
    private const int Seed = 20261130;
    private const int Iterations = 600;

    private static readonly JsonNode?[] Values =
    [
        null, 0, -1, true, "", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "missing.safetensors",
        "../outside.safetensors", "/etc/passwd", "sub/dir.safetensors", ".", new JsonArray(), new JsonObject(), 1e300,
    ];

    public ShardIndexFuzzTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void Mutated_indexes_open_or_raise_only_CheckpointFormatException()
    {
        using var dir = TestPaths.NewTempDir();
        var tensors = Enumerable.Range(0, 6).ToDictionary(i => $"t{i}", i => arange(40 * (i + 1), ScalarType.Float32).reshape(-1, 4));
        SafetensorsWriter.Write(dir.Path, tensors, maxShardBytes: 600);
        var indexPath = dir.Combine("model.safetensors.index.json");
        Assert.True(File.Exists(indexPath), "The writer should have sharded the tensors.");
        var original = File.ReadAllText(indexPath);
        var rng = new Random(Seed);
        var failures = new List<string>();
        int opened = 0, refused = 0;
        for (int i = 0; i < Iterations; i++)
        {
            var index = JsonNode.Parse(original)!.AsObject();
            var map = index["weight_map"]!.AsObject();
            var names = map.Select(kv => kv.Key).ToList();
            switch (rng.Next(6))
            {
                case 0: map.Remove(names[rng.Next(names.Count)]); break;
                case 1: map[names[rng.Next(names.Count)]] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
                case 2: map["extra" + rng.Next(5)] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
                case 3: index["weight_map"] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
                case 4: index.Remove("weight_map"); break;
                default: index["metadata"] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
            }
            File.WriteAllText(indexPath, rng.Next(10) == 0 ? index.ToJsonString()[..rng.Next(index.ToJsonString().Length)] : index.ToJsonString());
            try
            {
                using var reader = SafetensorsReader.Open(dir.Path);
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
                failures.Add($"seed {Seed}, case {i}: {ex.GetType().Name}: {ex.Message}\n  {File.ReadAllText(indexPath)}");
            }
        }
        foreach (var t in tensors.Values) t.Dispose();
        Assert.True(failures.Count == 0, $"{failures.Count} of {Iterations} indexes escaped with other exceptions:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(opened > 20 && refused > 100, $"Both outcomes should occur: {opened} opened, {refused} refused.");
    }
}
