using System.Text.Json;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>
/// Seeded mutation fuzzing of config.json: every mutated config either parses or raises one of the library's typed
/// exceptions (never NullReference, InvalidOperation, Overflow, Format …); the seed and case are printed on failure.
/// </summary>
public class ConfigJsonFuzzTests
{
    private const int Seed = 20261129;
    private const int Iterations = 4000;

    private static readonly string[] Samples =
        [ConfigSamples.Llama2_7B, ConfigSamples.TinyLlama_Chat, ConfigSamples.Qwen25_7B];

    private static readonly JsonNode?[] Values =
    [
        null, true, false, 0, -1, 1, 2, 3, int.MaxValue, long.MaxValue, -2147483649L, 1e308, -1e-300, 0.5, double.Epsilon,
        "", "llama", "qwen3", "mistral", "silu", "gelu", "bfloat16", "float8", "x", "1",
        new JsonArray(), new JsonArray(1, 2), new JsonArray("a"), new JsonObject(), new JsonObject { ["rope_type"] = "llama3" },
        new JsonObject { ["type"] = "linear", ["factor"] = 2.0 }, new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 },
    ];

    [Fact]
    public void Mutated_configs_parse_or_raise_only_the_librarys_exceptions()
    {
        var rng = new Random(Seed);
        var failures = new List<string>();
        int parsed = 0, refused = 0;
        for (int i = 0; i < Iterations; i++)
        {
            var o = JsonNode.Parse(Samples[i % Samples.Length])!.AsObject();
            var keys = o.Select(kv => kv.Key).ToList();
            int mutations = 1 + rng.Next(3);
            for (int m = 0; m < mutations; m++)
            {
                var key = keys[rng.Next(keys.Count)];
                switch (rng.Next(3))
                {
                    case 0: o.Remove(key); break;
                    case 1: o[key] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
                    default: o[key] = rng.Next(-5, 100_000); break;
                }
            }
            try
            {
                var config = ModelConfigJson.Parse(o, "fuzz.json");
                _ = ModelConfigJson.ToJson(config);
                parsed++;
            }
            catch (Exception ex) when (ex is CheckpointFormatException or UnsupportedModelException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                failures.Add($"seed {Seed}, case {i}: {ex.GetType().Name}: {ex.Message}\n  {o.ToJsonString()}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {Iterations} configs escaped with other exceptions:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(parsed > 100 && refused > 100, $"The mutations should exercise both outcomes: {parsed} parsed, {refused} refused.");
    }
}
