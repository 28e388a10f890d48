using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class ModelConfigJsonErrorTests
{
    private static JsonObject Sample() => JsonNode.Parse(ConfigSamples.TinyLlama_Chat)!.AsObject();

    [Fact]
    public void Unknown_model_type_names_the_type_and_the_file()
    {
        var o = Sample();
        o["model_type"] = "gpt2";
        var ex = Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.Parse(o, "/m/config.json"));
        Assert.Contains("gpt2", ex.Message);
        Assert.Contains("/m/config.json", ex.Message);
    }

    [Theory]
    [InlineData("gelu")]
    [InlineData("gelu_pytorch_tanh")]
    [InlineData("relu")]
    public void An_activation_other_than_silu_is_refused_not_run_as_silu(string activation)
    {
        var o = Sample();
        o["hidden_act"] = activation;
        var ex = Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.Parse(o, "/m/config.json"));
        Assert.Contains($"hidden_act '{activation}'", ex.Message);
        Assert.Contains("/m/config.json", ex.Message);
    }

    [Fact]
    public void Silu_its_alias_swish_and_an_absent_hidden_act_are_accepted()
    {
        foreach (var activation in new[] { "silu", "swish", null })
        {
            var o = Sample();
            if (activation is null) o.Remove("hidden_act");
            else o["hidden_act"] = activation;
            Assert.Equal(22, ModelConfigJson.Parse(o, "config.json").NumHiddenLayers);
        }
    }

    [Theory]
    [InlineData("model_type")]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void Missing_required_key_names_key_and_file(string key)
    {
        var o = Sample();
        o.Remove(key);
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Parse(o, "/m/config.json"));
        Assert.Contains($"'{key}'", ex.Message);
        Assert.Contains("/m/config.json", ex.Message);
    }

    [Theory]
    [InlineData("hidden_size", "\"2048\"")]
    [InlineData("hidden_size", "2048.5")]
    [InlineData("num_hidden_layers", "0")]
    [InlineData("num_key_value_heads", "5")]
    [InlineData("rms_norm_eps", "\"1e-5\"")]
    [InlineData("tie_word_embeddings", "\"false\"")]
    [InlineData("eos_token_id", "[2, \"x\"]")]
    [InlineData("rope_scaling", "[1]")]
    [InlineData("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}")]
    [InlineData("model_type", "7")]
    [InlineData("rope_theta", "-1")]
    public void Wrong_json_type_or_value_names_the_key(string key, string value)
    {
        var o = Sample();
        o[key] = JsonNode.Parse(value);
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Parse(o, "cfg.json"));
        Assert.Contains("cfg.json", ex.Message);
    }

    [Theory]
    [InlineData("""{"rope_type": "yarn", "factor": 4.0}""")]
    [InlineData("""{"type": "longrope", "factor": 4.0}""")]
    public void Unsupported_rope_scaling_type_is_refused(string scaling)
    {
        var o = Sample();
        o["rope_scaling"] = JsonNode.Parse(scaling);
        var ex = Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.Parse(o, "cfg.json"));
        Assert.Contains("rope_scaling", ex.Message);
    }

    [Fact]
    public void Qwen2_with_mixed_sliding_layers_is_refused_all_sliding_is_read()
    {
        var o = JsonNode.Parse(ConfigSamples.Qwen25_7B)!.AsObject();
        o["use_sliding_window"] = true;
        o["sliding_window"] = 4096;
        o["max_window_layers"] = 21;
        Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.Parse(o, "q"));
        o["max_window_layers"] = 0;
        Assert.Equal(4096, ModelConfigJson.Parse(o, "q").SlidingWindow);
    }

    [Fact]
    public void Load_reports_missing_invalid_and_non_object_files()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("config.json");
        var missing = Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Load(path));
        Assert.Contains(path, missing.Message);

        File.WriteAllText(path, "{\"model_type\": \"llama\",");
        Assert.Contains(path, Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Load(path)).Message);

        File.WriteAllText(path, "[1, 2]");
        Assert.Contains(path, Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Load(path)).Message);

        File.WriteAllText(path, ConfigSamples.Mistral7B_v01);
        Assert.Equal("mistral", ModelConfigJson.Load(path).ModelType);
    }
}
