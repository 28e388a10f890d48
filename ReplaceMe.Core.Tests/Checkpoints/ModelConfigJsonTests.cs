using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class ModelConfigJsonTests
{
    private static ModelConfig Parse(string json, string name = "config.json") =>
        ModelConfigJson.Parse(JsonNode.Parse(json)!.AsObject(), name);

    private static JsonObject Obj(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void Llama2_7B_uses_defaults_for_absent_keys()
    {
        var c = Parse(ConfigSamples.Llama2_7B);
        Assert.Equal("llama", c.ModelType);
        Assert.Equal((4096, 11008, 32, 32, 32), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads));
        Assert.Equal(128, c.HeadDim); // 4096 / 32
        Assert.Equal(32000, c.VocabSize);
        Assert.Equal(4096, c.MaxPositionEmbeddings);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta); // absent -> LlamaConfig default
        Assert.Null(c.RopeScaling);
        Assert.False(c.TieWordEmbeddings || c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Null(c.SlidingWindow);
        Assert.Equal(1, c.BosTokenId);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Null(c.PadTokenId);
        Assert.Equal("float16", c.TorchDtype);
    }

    [Fact]
    public void Llama31_8B_has_gqa_llama3_rope_scaling_and_eos_list()
    {
        var c = Parse(ConfigSamples.Llama31_8B_Instruct);
        Assert.Equal(8, c.NumKeyValueHeads);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.Equal(128000, c.BosTokenId);
        Assert.Equal(131072, c.MaxPositionEmbeddings);
        Assert.Equal("bfloat16", c.TorchDtype);
    }

    [Fact]
    public void Llama32_1B_is_tied_with_explicit_head_dim()
    {
        var c = Parse(ConfigSamples.Llama32_1B);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal((2048, 8192, 16, 32, 8, 64), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), c.RopeScaling);
    }

    [Fact]
    public void Mistral_reads_sliding_window_null_and_missing()
    {
        var c = Parse(ConfigSamples.Mistral7B_v01);
        Assert.Equal(4096, c.SlidingWindow);
        Assert.False(c.QkvBias || c.OutputBias || c.QkNorm);
        Assert.Equal(8, c.NumKeyValueHeads);
        Assert.Equal(32768, c.MaxPositionEmbeddings);

        var v02 = Obj(ConfigSamples.Mistral7B_v01);
        v02["sliding_window"] = null; // Mistral-7B-v0.2 and later
        Assert.Null(ModelConfigJson.Parse(v02, "v02").SlidingWindow);
        v02.Remove("sliding_window"); // MistralConfig default
        Assert.Equal(4096, ModelConfigJson.Parse(v02, "v02").SlidingWindow);
    }

    [Fact]
    public void Qwen25_has_qkv_bias_but_no_output_bias_and_no_active_window()
    {
        var c = Parse(ConfigSamples.Qwen25_7B);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.False(c.QkNorm);
        Assert.Null(c.SlidingWindow); // use_sliding_window false
        Assert.Equal((3584, 18944, 28, 28, 4, 128), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(1e6, c.RopeTheta);
        Assert.Equal(152064, c.VocabSize);
    }

    [Fact]
    public void Qwen3_has_qk_norm_and_explicit_head_dim()
    {
        var c = Parse(ConfigSamples.Qwen3_8B);
        Assert.True(c.QkNorm);
        Assert.False(c.QkvBias || c.OutputBias);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(36, c.NumHiddenLayers);
        Assert.Equal(1e6, c.RopeTheta);
        Assert.Equal([151645], c.EosTokenIds);
        Assert.Null(c.SlidingWindow);

        var biased = Obj(ConfigSamples.Qwen3_8B);
        biased["attention_bias"] = true;
        var b = ModelConfigJson.Parse(biased, "q3");
        Assert.True(b.QkvBias && b.OutputBias);
    }

    [Fact]
    public void TinyLlama_and_SmolLM_are_llama_architecture()
    {
        var t = Parse(ConfigSamples.TinyLlama_Chat);
        Assert.Equal((22, 4, 64), (t.NumHiddenLayers, t.NumKeyValueHeads, t.HeadDim));
        var s = Parse(ConfigSamples.SmolLM_135M);
        Assert.Equal((576, 9, 3, 64, true), (s.HiddenSize, s.NumAttentionHeads, s.NumKeyValueHeads, s.HeadDim, s.TieWordEmbeddings));
        Assert.Equal(0, s.BosTokenId);
        Assert.Equal("float32", s.TorchDtype);
    }

    [Fact]
    public void Llama_attention_bias_and_mlp_bias_set_all_biases()
    {
        var o = Obj(ConfigSamples.TinyLlama_Chat);
        o["attention_bias"] = true;
        o["mlp_bias"] = true;
        var c = ModelConfigJson.Parse(o, "x");
        Assert.True(c.QkvBias && c.OutputBias && c.MlpBias);
    }

    [Theory]
    [InlineData("""{"rope_type": "linear", "factor": 2.0}""", "linear", 2.0)]
    [InlineData("""{"type": "dynamic", "factor": 4}""", "dynamic", 4.0)]
    public void Linear_and_dynamic_rope_scaling_parse(string scaling, string type, double factor)
    {
        var o = Obj(ConfigSamples.Llama2_7B);
        o["rope_scaling"] = JsonNode.Parse(scaling);
        var s = ModelConfigJson.Parse(o, "x").RopeScaling!;
        Assert.Equal((type, factor), (s.Type, s.Factor));
    }

    [Fact]
    public void Dtype_key_of_newer_transformers_is_read()
    {
        var o = Obj(ConfigSamples.SmolLM_135M);
        o.Remove("torch_dtype");
        o["dtype"] = "bfloat16";
        Assert.Equal("bfloat16", ModelConfigJson.Parse(o, "x").TorchDtype);
    }

    [Fact]
    public void ToJson_round_trips_every_sample_and_keeps_unknown_keys()
    {
        foreach (var (name, json) in ConfigSamples.All())
        {
            var original = Obj(json);
            original["my_custom_key"] = JsonNode.Parse("""{"nested": [1, 2.5, "x"]}""");
            var config = ModelConfigJson.Parse(original, name);
            var written = ModelConfigJson.ToJson(config);
            // Every key of the source survives with an equal value (new defaults may be added).
            foreach (var (key, value) in original)
                Assert.True(JsonNode.DeepEquals(value, written[key]), $"{name}: key '{key}' changed to {written[key]?.ToJsonString()}");
            var back = ModelConfigJson.Parse(written, name);
            Assert.Equal(Comparable(config), Comparable(back));
            Assert.Equal(config.EosTokenIds, back.EosTokenIds);
        }
    }

    [Fact]
    public void ToJson_writes_changed_values()
    {
        var c = Parse(ConfigSamples.Llama31_8B_Instruct) with
        {
            NumHiddenLayers = 24,
            RopeTheta = 10000,
            RopeScaling = new RopeScaling("linear", 2.0),
            EosTokenIds = [7],
            TorchDtype = "float32",
        };
        var o = ModelConfigJson.ToJson(c);
        Assert.Equal(24, o["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal(10000.0, o["rope_theta"]!.GetValue<double>());
        Assert.Equal("linear", o["rope_scaling"]!["rope_type"]!.GetValue<string>());
        Assert.Equal(2.0, o["rope_scaling"]!["factor"]!.GetValue<double>());
        Assert.Equal("float32", o["torch_dtype"]!.GetValue<string>());
        Assert.Equal(Comparable(c), Comparable(ModelConfigJson.Parse(o, "x")));
    }

    [Fact]
    public void ToJson_refuses_flags_the_family_cannot_express()
    {
        var c = Parse(ConfigSamples.TinyLlama_Chat) with { QkNorm = true };
        Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.ToJson(c));
        var q = Parse(ConfigSamples.Qwen25_7B) with { QkvBias = false };
        Assert.Throws<UnsupportedModelException>(() => ModelConfigJson.ToJson(q));
    }

    [Fact]
    public void WithBlocksRemoved_shortens_layer_types_and_clamps_max_window_layers()
    {
        var o = Obj(ConfigSamples.Qwen3_8B);
        o["layer_types"] = new JsonArray(Enumerable.Range(0, 36).Select(i => (JsonNode?)(i % 2 == 0 ? "full_attention" : $"full_attention_{i}")).ToArray());
        var c = ModelConfigJson.Parse(o, "q3").WithBlocksRemoved(10, 14);
        Assert.Equal(32, c.NumHiddenLayers);
        var written = ModelConfigJson.ToJson(c);
        Assert.Equal(32, written["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal(32, written["max_window_layers"]!.GetValue<int>()); // 36 -> clamped to the new count
        var types = written["layer_types"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(32, types.Count);
        Assert.Equal("full_attention_9", types[9]);
        Assert.Equal("full_attention", types[10]); // old layer 14
        Assert.Equal("full_attention_15", types[11]);
        Assert.Equal(32, ModelConfigJson.Parse(written, "x").NumHiddenLayers);
    }

    private static readonly JsonObject EmptyRaw = new();
    private static readonly int[] NoIds = [];

    private static ModelConfig Comparable(ModelConfig c) => c with { Raw = EmptyRaw, EosTokenIds = NoIds };
}
