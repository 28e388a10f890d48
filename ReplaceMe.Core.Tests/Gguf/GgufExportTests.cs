using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary>The GGUF container, metadata, names, permutation and encodings, read back with the tests' own parser.</summary>
public class GgufExportTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Stories15M_f32_export_has_llama_keys_tokenizer_and_exact_tensors()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("m.gguf");
        var reports = new List<PruningProgress>();
        var model = Fixture.Model;
        model.SaveGguf(path, new GgufExportOptions { DType = GgufDType.F32, Name = "s15" }, new SyncProgress(reports.Add));
        var g = new GgufTestReader(path);
        var c = model.Config;

        Assert.Equal(3u, g.Version);
        Assert.Equal("llama", g.Get<string>("general.architecture"));
        Assert.Equal("s15", g.Get<string>("general.name"));
        Assert.Equal(0u, g.Get<uint>("general.file_type"));
        Assert.Equal((uint)c.NumHiddenLayers, g.Get<uint>("llama.block_count"));
        Assert.Equal((uint)c.HiddenSize, g.Get<uint>("llama.embedding_length"));
        Assert.Equal((uint)c.IntermediateSize, g.Get<uint>("llama.feed_forward_length"));
        Assert.Equal((uint)c.NumAttentionHeads, g.Get<uint>("llama.attention.head_count"));
        Assert.Equal((uint)c.NumKeyValueHeads, g.Get<uint>("llama.attention.head_count_kv"));
        Assert.Equal((uint)c.MaxPositionEmbeddings, g.Get<uint>("llama.context_length"));
        Assert.Equal((float)c.RmsNormEps, g.Get<float>("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal((float)c.RopeTheta, g.Get<float>("llama.rope.freq_base"));
        Assert.Equal("llama", g.Get<string>("tokenizer.ggml.model"));
        var tokens = g.Get<object[]>("tokenizer.ggml.tokens");
        Assert.Equal(c.VocabSize, tokens.Length);
        Assert.Equal(c.VocabSize, g.Get<object[]>("tokenizer.ggml.scores").Length);
        var types = g.Get<object[]>("tokenizer.ggml.token_type");
        // Llama 2's SentencePiece vocabulary: <unk>, <s>, </s>, then 256 byte tokens <0x00>..<0xFF>.
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens.Take(4).Cast<string>());
        Assert.Equal([2, 3, 3, 6], types.Take(4).Cast<int>());
        Assert.Equal(1u, g.Get<uint>("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2u, g.Get<uint>("tokenizer.ggml.eos_token_id"));
        Assert.True(g.Get<bool>("tokenizer.ggml.add_bos_token"));

        // Every tensor starts at a multiple of the alignment; names are llama.cpp's.
        Assert.All(g.Tensors, t => Assert.Equal(0UL, t.Offset % 32));
        Assert.Contains(g.Tensors, t => t.Name == "token_embd.weight");
        Assert.Contains(g.Tensors, t => t.Name == $"blk.{c.NumHiddenLayers - 1}.ffn_down.weight");
        Assert.Equal(model.state_dict().Count, g.Tensors.Count);
        Assert.Equal(g.Tensors.Count, reports.Count);
        Assert.Equal(1.0, reports[^1].Fraction);

        // Embedding bytes as stored; dims are the torch shape reversed.
        var embd = g.Tensor("token_embd.weight");
        Assert.Equal([(ulong)c.HiddenSize, (ulong)c.VocabSize], embd.Dims);
        using var hfEmbd = model.state_dict()["model.embed_tokens.weight"].to(ScalarType.Float32).contiguous();
        Assert.Equal(hfEmbd.data<float>().ToArray(), g.F32("token_embd.weight"));

        // Q/K permutation: GGUF row h·hd + 2i is HF row h·hd + i, row h·hd + 2i + 1 is HF row h·hd + hd/2 + i.
        int hd = c.HeadDim, d = c.HiddenSize;
        foreach (var (hfName, ggName) in new[] { ("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"), ("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight") })
        {
            using var hf = model.state_dict()[hfName].to(ScalarType.Float32).contiguous();
            var hfRows = hf.data<float>().ToArray();
            var gg = g.F32(ggName);
            for (int h = 0; h < c.NumAttentionHeads; h++)
                for (int i = 0; i < hd / 2; i++)
                {
                    Assert.Equal(hfRows.AsSpan((h * hd + i) * d, d).ToArray(), gg.AsSpan((h * hd + 2 * i) * d, d).ToArray());
                    Assert.Equal(hfRows.AsSpan((h * hd + hd / 2 + i) * d, d).ToArray(), gg.AsSpan((h * hd + 2 * i + 1) * d, d).ToArray());
                }
        }
        // V is not permuted.
        using var v = model.state_dict()["model.layers.1.self_attn.v_proj.weight"].to(ScalarType.Float32).contiguous();
        Assert.Equal(v.data<float>().ToArray(), g.F32("blk.1.attn_v.weight"));
    }

    [Fact]
    public void Q8_0_blocks_match_a_hand_computed_block()
    {
        // amax 2.54 → d = 0.02; x / d rounds half away from zero.
        var values = new float[32];
        values[0] = 2.54f; values[1] = -1.27f; values[2] = 0.01f; values[3] = -0.01f; values[4] = 0.03f;
        var bytes = new byte[34];
        GgufQuantization.QuantizeQ8(values, bytes);
        Assert.Equal((Half)(2.54f / 127f), System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(bytes));
        float id = 1f / (2.54f / 127f);
        Assert.Equal(127, (sbyte)bytes[2]);
        Assert.Equal(-64, (sbyte)bytes[3]);        // -63.5 → -64
        Assert.Equal((sbyte)MathF.Round(0.01f * id, MidpointRounding.AwayFromZero), (sbyte)bytes[4]);
        Assert.Equal(1, (sbyte)bytes[4]);          // 0.5 → 1
        Assert.Equal(-1, (sbyte)bytes[5]);         // -0.5 → -1
        Assert.Equal(2, (sbyte)bytes[6]);          // 1.5 → 2
        Assert.All(bytes.Skip(7), b => Assert.Equal(0, b));
        // An all-zero block has scale 0 and zero quants.
        var zeros = new byte[34];
        GgufQuantization.QuantizeQ8(new float[32], zeros);
        Assert.All(zeros, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Q8_0_and_f16_exports_keep_vectors_f32_and_store_matrices_in_the_asked_type()
    {
        using var dir = TestPaths.NewTempDir();
        var model = Fixture.Model;
        model.SaveGguf(dir.Combine("q.gguf"), new GgufExportOptions { DType = GgufDType.Q8_0, Alignment = 64 });
        var g = new GgufTestReader(dir.Combine("q.gguf"));
        Assert.Equal(7u, g.Get<uint>("general.file_type"));
        Assert.Equal(64u, g.Get<uint>("general.alignment"));
        Assert.All(g.Tensors, t => Assert.Equal(0UL, t.Offset % 64));
        Assert.Equal(0u, g.Tensor("blk.0.attn_norm.weight").Type);
        Assert.Equal(8u, g.Tensor("blk.0.ffn_up.weight").Type);
        // ffn_up rows are 288 long (9 blocks): check the first block against the reference rule.
        using var up = model.state_dict()["model.layers.0.mlp.up_proj.weight"].to(ScalarType.Float32).contiguous();
        var first = up.data<float>().ToArray().AsSpan(0, 32).ToArray();
        float amax = first.Max(MathF.Abs), dq = amax / 127f;
        var stored = g.Data("blk.0.ffn_up.weight", 34);
        Assert.Equal((Half)dq, System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(stored));
        for (int j = 0; j < 32; j++) Assert.Equal((sbyte)MathF.Round(first[j] * (1f / dq), MidpointRounding.AwayFromZero), (sbyte)stored[2 + j]);

        model.SaveGguf(dir.Combine("h.gguf"), new GgufExportOptions { DType = GgufDType.F16 });
        var h = new GgufTestReader(dir.Combine("h.gguf"));
        Assert.Equal(1u, h.Tensor("blk.0.ffn_up.weight").Type);
        var halves = h.Data("blk.0.ffn_up.weight", 64);
        for (int j = 0; j < 32; j++) Assert.Equal((Half)first[j], System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(halves[(2 * j)..]));
    }

    [Fact]
    public void Existing_file_is_kept_unless_overwrite_and_cancellation_leaves_nothing()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("m.gguf");
        File.WriteAllText(path, "user data");
        Assert.Throws<IOException>(() => Fixture.Model.SaveGguf(path));
        Assert.Equal("user data", File.ReadAllText(path));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Fixture.Model.SaveGguf(path, new GgufExportOptions { Overwrite = true }, cancellationToken: cts.Token));
        Assert.Equal("user data", File.ReadAllText(path));
        Assert.Equal(["m.gguf"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        var clash = new GgufExportOptions { ExtraMetadata = new Dictionary<string, string> { ["general.name"] = "x" } };
        Assert.Throws<ArgumentException>(() => Fixture.Model.SaveGguf(dir.Combine("n.gguf"), clash));
        Assert.False(File.Exists(dir.Combine("n.gguf")));
    }

    [Fact]
    public void Families_map_to_their_architectures_or_are_refused()
    {
        var llama = new ModelConfig { ModelType = "llama", HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 100 };
        Assert.Equal(("llama", true), (GgufPlan.For(llama).Architecture, GgufPlan.For(llama).PermuteQk));
        Assert.Equal(("llama", true), (GgufPlan.For(llama with { ModelType = "mistral" }).Architecture, GgufPlan.For(llama with { ModelType = "mistral" }).PermuteQk));
        Assert.Equal(("qwen2", false), (GgufPlan.For(llama with { ModelType = "qwen2", QkvBias = true }).Architecture, GgufPlan.For(llama with { ModelType = "qwen2", QkvBias = true }).PermuteQk));
        Assert.Equal("qwen3", GgufPlan.For(llama with { ModelType = "qwen3", QkNorm = true }).Architecture);
        Assert.Throws<UnsupportedModelException>(() => GgufPlan.For(llama with { ModelType = "qwen3", QkvBias = true }));
        Assert.Throws<UnsupportedModelException>(() => GgufPlan.For(llama with { ModelType = "qwen2", MlpBias = true }));
        var l3 = new RopeScaling("llama3", 8, 1, 4, 8192);
        Assert.Throws<UnsupportedModelException>(() => GgufPlan.For(llama with { ModelType = "qwen2", RopeScaling = l3 }));
        // Llama 3 scaling becomes rope_freqs factors: 1 for short wavelengths, the factor for long ones (hand-derived bounds).
        var f = GgufPlan.For(llama with { RopeTheta = 500000, RopeScaling = l3 }).RopeFactors!;
        Assert.Equal(8, f.Length);
        Assert.Equal(1f, f[0]);
        Assert.Equal(8f, f[^1], 4);
        Assert.Equal("blk.3.attn_output.weight", GgufPlan.TensorName("model.layers.3.self_attn.o_proj.weight"));
        Assert.Equal("blk.0.attn_q_norm.weight", GgufPlan.TensorName("model.layers.0.self_attn.q_norm.weight"));
        Assert.Throws<UnsupportedModelException>(() => GgufPlan.TensorName("model.layers.0.mystery.weight"));
    }

    [Fact]
    public void SentencePiece_ids_past_the_pieces_take_added_tokens_or_become_unused()
    {
        var added = new Dictionary<int, (string, bool)> { [32000] = ("<|im_start|>", true), [32001] = ("<extra>", false) };
        var (tokens, scores, types, addPrefix) = GgufVocabulary.ReadSentencePiece(Path.Combine(Fixture.ModelDir, "tokenizer.model"), 32003, added);
        Assert.Equal(32003, tokens.Count);
        Assert.Equal(["<|im_start|>", "<extra>", "[PAD32002]"], tokens.Skip(32000));
        Assert.Equal([3, 4, 5], types.Skip(32000));
        Assert.Equal(-1000f, scores[^1]);
        Assert.True(addPrefix); // Llama 2's normalizer adds the dummy prefix
        Assert.Throws<CheckpointFormatException>(() => GgufVocabulary.ReadSentencePiece(Path.Combine(Fixture.ModelDir, "tokenizer.model"), 100));
    }

    [Theory]
    [InlineData("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}""", "llama-bpe")]
    [InlineData("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]}""", "qwen2")]
    [InlineData("""{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}""", "gpt-2")]
    [InlineData("""{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}""", "smollm")]
    [InlineData("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","use_regex":false}]}""", null)]
    public void Pre_tokenizer_names_follow_the_split_rules(string preTokenizer, string? expected)
    {
        var root = System.Text.Json.JsonDocument.Parse($$"""{"pre_tokenizer": {{preTokenizer}} }""").RootElement;
        if (expected is null) Assert.Throws<UnsupportedModelException>(() => GgufVocabulary.PreTokenizerName(root, "tokenizer.json"));
        else Assert.Equal(expected, GgufVocabulary.PreTokenizerName(root, "tokenizer.json"));
        _ = new JsonObject();
    }

    private sealed class SyncProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }
}
