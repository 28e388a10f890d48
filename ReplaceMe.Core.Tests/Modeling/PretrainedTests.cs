using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

public class PretrainedTests
{
    private static readonly byte[] TokenizerBytes = [0x7b, 0x22, 0x76, 0x22, 0x3a, 0x31, 0x7d, 0x0a, 0xff, 0x00, 0x80]; // not even valid UTF-8
    private const string GenerationConfig = "{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2\n}\n";

    private static JsonObject LlamaJson(string dtype, bool tied = false) => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_size"] = 32,
        ["intermediate_size"] = 48, ["num_hidden_layers"] = 3, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2,
        ["vocab_size"] = 50, ["max_position_embeddings"] = 128, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = tied, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["torch_dtype"] = dtype,
        ["custom_key_kept"] = "yes",
    };

    /// <summary>Writes a Hugging Face folder by hand (config, tensors, tokenizer and generation files) from a random model.</summary>
    private static DecoderModel WriteSource(string dir, JsonObject json, ScalarType storage, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>>? edit = null)
    {
        Directory.CreateDirectory(dir);
        var config = ModelConfigJson.Parse(json, "test config");
        var model = DecoderModel.Create(config, seed: 5);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.json"), TokenizerBytes);
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), GenerationConfig);
        var tensors = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(storage));
        SafetensorsWriter.Write(dir, (edit ?? (t => t))(tensors));
        return model;
    }

    private static Tensor Logits(DecoderModel model)
    {
        var (ids, mask) = TinyModels.Pad([[5, 9, 3, 44, 17, 8], [7, 7, 21]], left: true);
        return model.Forward(ids, mask);
    }

    [Fact]
    public void A_Hub_cache_snapshot_of_symlinks_into_blobs_loads_prunes_and_saves()
    {
        // huggingface_hub's layout: models--org--name/{blobs/<hash>, snapshots/<rev>/<file> -> ../../blobs/<hash>, refs/main}.
        using var tmp = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        using var original = WriteSource(tmp.Combine("plain"), LlamaJson("float32"), ScalarType.Float32);
        var repo = tmp.Combine("hub", "models--org--tiny");
        var snapshot = Path.Combine(repo, "snapshots", "0123abcd");
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), "0123abcd");
        foreach (var file in Directory.GetFiles(tmp.Combine("plain")))
        {
            var blob = Path.Combine(repo, "blobs", Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))).ToLowerInvariant());
            File.Copy(file, blob, overwrite: true);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        Assert.True(new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget is not null);

        using var loaded = DecoderModel.FromPretrained(snapshot);
        Assert.Equal(0, TinyModels.MaxAbsDiff(Logits(original), Logits(loaded)));
        loaded.RemoveBlocks(1, 2);
        loaded.SavePretrained(tmp.Combine("pruned"));
        Assert.Equal(TokenizerBytes, File.ReadAllBytes(tmp.Combine("pruned", "tokenizer.json")));   // content, not a link
        Assert.Null(new FileInfo(tmp.Combine("pruned", "tokenizer.json")).LinkTarget);
        using var reloaded = DecoderModel.FromPretrained(tmp.Combine("pruned"));
        Assert.Equal(2, reloaded.BlockCount);
    }

    public static TheoryData<string> Families() => ["llama", "llama-biases", "llama-tied", "qwen2", "qwen3", "mistral"];

    [Theory]
    [MemberData(nameof(Families))]
    public void ExpectedShapes_equal_the_allocated_parameters(string family)
    {
        var config = family switch
        {
            "llama-biases" => TinyModels.LlamaAllBiases(),
            "llama-tied" => TinyModels.Llama(tied: true),
            "qwen2" => TinyModels.Qwen2(),
            "qwen3" => TinyModels.Qwen3(),
            "mistral" => TinyModels.Mistral(),
            _ => TinyModels.Llama(layers: 3),
        };
        using var model = DecoderModel.Create(config, seed: 1);
        var allocated = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var computed = DecoderModel.ExpectedShapes(config);
        Assert.Equal(allocated.Keys.Order(StringComparer.Ordinal), computed.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in allocated) Assert.Equal(shape, computed[key]);
    }

    [Fact]
    public void A_config_that_does_not_describe_the_checkpoint_fails_before_anything_is_allocated()
    {
        using var tmp = TestPaths.NewTempDir();
        using (WriteSource(tmp.Combine("src"), LlamaJson("float32"), ScalarType.Float32)) { }
        // 100 000 blocks of hidden size 8192 would need terabytes: only a check made before allocation can answer.
        var json = LlamaJson("float32");
        json["num_hidden_layers"] = 100_000;
        json["hidden_size"] = 8192;
        json["num_attention_heads"] = 64;
        json["num_key_value_heads"] = 8;
        json["intermediate_size"] = 28672;
        File.WriteAllText(tmp.Combine("src", "config.json"), json.ToJsonString());
        var ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(tmp.Combine("src")));
        Assert.Contains("has shape [50, 32] but the config requires [50, 8192]", ex.Message);
    }

    [Fact]
    public void Float32_round_trip_is_bit_exact_and_copies_tokenizer_files()
    {
        using var tmp = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        using var original = WriteSource(tmp.Combine("src"), LlamaJson("float32"), ScalarType.Float32);
        using var loaded = DecoderModel.FromPretrained(tmp.Combine("src"));
        Assert.Equal(0, TinyModels.MaxAbsDiff(Logits(original), Logits(loaded)));
        Assert.Equal(tmp.Combine("src"), loaded.SourceDirectory);

        loaded.SavePretrained(tmp.Combine("out"));
        Assert.Equal(TokenizerBytes, File.ReadAllBytes(tmp.Combine("out", "tokenizer.json")));
        Assert.Equal(GenerationConfig, File.ReadAllText(tmp.Combine("out", "generation_config.json")));
        var savedJson = JsonNode.Parse(File.ReadAllText(tmp.Combine("out", "config.json")))!.AsObject();
        Assert.Equal("yes", (string)savedJson["custom_key_kept"]!);
        Assert.Equal("float32", (string)savedJson["torch_dtype"]!);

        using var again = DecoderModel.FromPretrained(tmp.Combine("out"));
        var a = loaded.state_dict();
        foreach (var (key, value) in again.state_dict())
            Assert.True(TinyModels.MaxAbsDiff(value, a[key]) == 0, key);
        Assert.Equal(0, TinyModels.MaxAbsDiff(Logits(original), Logits(again)));
        Assert.DoesNotContain(Directory.GetDirectories(tmp.Path), d => Path.GetFileName(d).StartsWith('.'));
    }

    [Fact]
    public void Bfloat16_checkpoint_is_upcast_for_compute_and_saved_back_as_identical_bfloat16()
    {
        using var tmp = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        WriteSource(tmp.Combine("src"), LlamaJson("bfloat16", tied: true), ScalarType.BFloat16).Dispose();
        using var loaded = DecoderModel.FromPretrained(tmp.Combine("src"));
        Assert.Equal(ScalarType.Float32, loaded.state_dict()["model.norm.weight"].dtype);
        Assert.DoesNotContain("lm_head.weight", loaded.state_dict().Keys);

        loaded.SavePretrained(tmp.Combine("out"));
        loaded.SavePretrained(tmp.Combine("out32"), new SaveOptions { DType = ScalarType.Float32 });
        using var src = SafetensorsReader.Open(tmp.Combine("src"));
        using var out16 = SafetensorsReader.Open(tmp.Combine("out"));
        using var out32 = SafetensorsReader.Open(tmp.Combine("out32"));
        Assert.Equal(src.Names, out16.Names);
        foreach (var name in src.Names)
        {
            Assert.Equal("BF16", out16.GetInfo(name).DType);
            Assert.Equal("F32", out32.GetInfo(name).DType);
            Assert.True(TinyModels.MaxAbsDiff(src.Read(name), out16.Read(name)) == 0, name);
        }
        Assert.Equal(File.ReadAllBytes(tmp.Combine("src", "model.safetensors")), File.ReadAllBytes(tmp.Combine("out", "model.safetensors")));
    }

    [Fact]
    public void Pruned_model_saves_a_consistent_sharded_folder()
    {
        using var tmp = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        WriteSource(tmp.Combine("src"), LlamaJson("float32"), ScalarType.Float32).Dispose();
        using var model = DecoderModel.FromPretrained(tmp.Combine("src"));
        model.RemoveBlocks(1, 2);
        var expected = Logits(model);
        model.SavePretrained(tmp.Combine("out"), new SaveOptions { MaxShardBytes = 20_000 });
        Assert.True(File.Exists(tmp.Combine("out", SafetensorsReader.IndexFileName)));
        using var reloaded = DecoderModel.FromPretrained(tmp.Combine("out"));
        Assert.Equal(2, reloaded.Config.NumHiddenLayers);
        Assert.Equal(0, TinyModels.MaxAbsDiff(expected, Logits(reloaded)));
        Assert.Throws<IOException>(() => model.SavePretrained(tmp.Combine("out")));
        model.SavePretrained(tmp.Combine("out"), new SaveOptions { Overwrite = true, ExtraFiles = new Dictionary<string, string> { ["card.md"] = "pruned" } });
        Assert.Equal("pruned", File.ReadAllText(tmp.Combine("out", "card.md")));
        Assert.False(File.Exists(tmp.Combine("out", SafetensorsReader.IndexFileName)));
    }

    [Fact]
    public void Missing_and_misshapen_tensors_are_named()
    {
        using var tmp = TestPaths.NewTempDir();
        using var scope = NewDisposeScope();
        const string Key = "model.layers.1.mlp.up_proj.weight";
        WriteSource(tmp.Combine("missing"), LlamaJson("float32"), ScalarType.Float32, t => { t.Remove(Key); return t; }).Dispose();
        var ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(tmp.Combine("missing")));
        Assert.Contains(Key, ex.Message, StringComparison.Ordinal);

        WriteSource(tmp.Combine("shape"), LlamaJson("float32"), ScalarType.Float32, t => { t[Key] = zeros(47, 32); return t; }).Dispose();
        ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(tmp.Combine("shape")));
        Assert.Contains(Key, ex.Message, StringComparison.Ordinal);
        Assert.Contains("[47, 32]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[48, 32]", ex.Message, StringComparison.Ordinal);

        WriteSource(tmp.Combine("extra"), LlamaJson("float32"), ScalarType.Float32, t => { t["model.layers.3.mlp.up_proj.weight"] = zeros(48, 32); return t; }).Dispose();
        ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(tmp.Combine("extra")));
        Assert.Contains("model.layers.3.mlp.up_proj.weight", ex.Message, StringComparison.Ordinal);

        Assert.Throws<DirectoryNotFoundException>(() => DecoderModel.FromPretrained(tmp.Combine("nowhere")));
        Directory.CreateDirectory(tmp.Combine("noconfig"));
        Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(tmp.Combine("noconfig")));
    }
}
