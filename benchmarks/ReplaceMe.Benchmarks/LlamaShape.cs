using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// The shape of a Llama-family checkpoint that the streaming benchmarks generate: <c>1b</c> = Llama-3.2-1B (16 blocks,
/// d 2048, ff 8192, 32/8 heads of 64, vocab 128256, tied, llama3 rope factor 32), <c>8b</c> = Llama-3.1-8B (32 blocks,
/// d 4096, ff 14336, 32/8 heads of 128, vocab 128256, untied <c>lm_head</c>, llama3 rope factor 8), <c>quick</c> = the
/// 1B block shape with 4 blocks and a 32000-token vocabulary. All bfloat16.
/// </summary>
internal sealed record LlamaShape(string Name, int Layers, int Hidden, int Ff, int Heads, int KvHeads, int HeadDim, int Vocab,
    bool Tied, double RopeFactor, long MaxShardBytes)
{
    /// <summary>The shape named by <c>--shape</c> (<c>1b</c> unless given; <c>quick</c> with <c>--quick</c> and no <c>--shape</c>).</summary>
    public static LlamaShape For(string? name, bool quick) => (name ?? (quick ? "quick" : "1b")) switch
    {
        "1b" => new("1b", 16, 2048, 8192, 32, 8, 64, 128256, Tied: true, RopeFactor: 32, MaxShardBytes: 1L << 30),
        "8b" => new("8b", 32, 4096, 14336, 32, 8, 128, 128256, Tied: false, RopeFactor: 8, MaxShardBytes: 5_000_000_000),
        "quick" => new("quick", 4, 2048, 8192, 32, 8, 64, 32000, Tied: true, RopeFactor: 32, MaxShardBytes: 1L << 30),
        var other => throw new ArgumentException($"--shape must be 1b, 8b or quick, not '{other}'."),
    };

    /// <summary>Every tensor under its Hugging Face name, with its shape.</summary>
    public IReadOnlyList<(string Name, long[] Shape)> Tensors()
    {
        var list = new List<(string, long[])> { ("model.embed_tokens.weight", [Vocab, Hidden]), ("model.norm.weight", [Hidden]) };
        if (!Tied) list.Add(("lm_head.weight", [Vocab, Hidden]));
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}.";
            list.Add((p + "input_layernorm.weight", [Hidden]));
            list.Add((p + "post_attention_layernorm.weight", [Hidden]));
            list.Add((p + "self_attn.q_proj.weight", [Heads * HeadDim, Hidden]));
            list.Add((p + "self_attn.k_proj.weight", [KvHeads * HeadDim, Hidden]));
            list.Add((p + "self_attn.v_proj.weight", [KvHeads * HeadDim, Hidden]));
            list.Add((p + "self_attn.o_proj.weight", [Hidden, Heads * HeadDim]));
            list.Add((p + "mlp.gate_proj.weight", [Ff, Hidden]));
            list.Add((p + "mlp.up_proj.weight", [Ff, Hidden]));
            list.Add((p + "mlp.down_proj.weight", [Hidden, Ff]));
        }
        return list;
    }

    /// <summary>Parameters of the model (every tensor's elements).</summary>
    public long Parameters => Tensors().Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>One line for reports.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: {Layers} blocks, d {Hidden}, ff {Ff}, {Heads}/{KvHeads} heads of {HeadDim}, vocab {Vocab}, {(Tied ? "tied" : "untied lm_head")}, bf16, {Parameters / 1e9:F2}B parameters ({2 * Parameters / 1e9:F2} GB bf16, {4 * Parameters / 1e9:F2} GB float32)");

    /// <summary>
    /// Writes a random-weight checkpoint of this shape into <paramref name="dir"/> with the project's safetensors writer,
    /// tensor by tensor (memory stays O(one 4 MiB buffer) whatever the model size): matrices N(0, <paramref name="std"/>)
    /// in bfloat16, norm weights 1; then <c>config.json</c> and a byte-level <c>tokenizer.json</c> (256 byte tokens, no
    /// merges: one token per UTF-8 byte, ids &lt; 256). Returns the tensor bytes written.
    /// </summary>
    public long WriteCheckpoint(string dir, double std = 0.02, ulong seed = 20261130)
    {
        Directory.CreateDirectory(dir);
        var table = NormalTable(std, (int)(seed % int.MaxValue));
        var tensors = new List<RawTensor>();
        long bytes = 0, index = 0;
        foreach (var (name, shape) in Tensors())
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            ulong state = seed * 0x9E3779B97F4A7C15UL + (ulong)++index * 0xD1B54A32D192ED03UL;
            tensors.Add(new RawTensor(name, "BF16", shape, 2 * count, s => WriteBf16(s, count, norm ? null : table, state)));
            bytes += 2 * count;
        }
        SafetensorsWriter.WriteRaw(dir, tensors, MaxShardBytes, metadata: null, CancellationToken.None);
        File.WriteAllText(Path.Combine(dir, "config.json"), Config().ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), ByteTokenizerJson());
        return bytes;
    }

    private JsonObject Config() => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_size"] = Hidden, ["intermediate_size"] = Ff,
        ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads, ["num_key_value_heads"] = KvHeads, ["head_dim"] = HeadDim,
        ["vocab_size"] = Vocab, ["max_position_embeddings"] = 131072, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0,
        ["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = RopeFactor, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192 },
        ["tie_word_embeddings"] = Tied, ["torch_dtype"] = "bfloat16", ["bos_token_id"] = 128000, ["eos_token_id"] = 128001,
        ["hidden_act"] = "silu", ["attention_bias"] = false, ["mlp_bias"] = false,
    };

    /// <summary>
    /// 65536 bfloat16 bit patterns of N(0, std) draws (Box–Muller from a seeded <see cref="Random"/>); a weight is the
    /// entry at a 16-bit index drawn by xorshift64*, so every weight is an independent draw from that sample.
    /// </summary>
    private static ushort[] NormalTable(double std, int seed)
    {
        var rng = new Random(seed);
        var table = new ushort[65536];
        for (int i = 0; i < table.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            float v = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            uint bits = BitConverter.SingleToUInt32Bits(v);
            table[i] = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16); // round to nearest even
        }
        return table;
    }

    private static long WriteBf16(Stream s, long count, ushort[]? table, ulong state)
    {
        var buffer = new byte[4 << 20];
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(buffer.AsSpan());
        for (long done = 0; done < count;)
        {
            int n = (int)Math.Min(words.Length, count - done);
            if (table is null) words[..n].Fill(0x3F80); // 1.0
            else
                for (int i = 0; i < n; i += 4)
                {
                    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
                    ulong r = state * 0x2545F4914F6CDD1DUL;
                    for (int k = 0; k < 4 && i + k < n; k++) words[i + k] = table[(int)(r >> (16 * k)) & 0xFFFF];
                }
            s.Write(buffer, 0, 2 * n);
            done += n;
        }
        return 2 * count;
    }

    /// <summary>A byte-level BPE <c>tokenizer.json</c> with the 256 byte tokens (GPT-2's byte → character map) and no merges.</summary>
    internal static string ByteTokenizerJson()
    {
        var vocab = new JsonObject();
        var map = ByteToChar();
        for (int b = 0; b < 256; b++) vocab[map[b].ToString()] = b;
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        }.ToJsonString();
    }

    private static char[] ByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 ? (char)b : (char)next++;
        return map;
    }

    /// <summary>A calibration text file of <paramref name="documents"/> blank-line-separated documents of random lowercase
    /// words, each at least <paramref name="tokens"/> bytes (so at least that many tokens with the byte tokenizer).</summary>
    public static string WriteCalibration(string path, int documents, int tokens, int seed = 11)
    {
        var rng = new Random(seed);
        var text = new StringBuilder();
        for (int d = 0; d < documents; d++)
        {
            if (d > 0) text.Append("\n\n");
            int start = text.Length;
            while (text.Length - start < tokens + 16)
            {
                int len = rng.Next(2, 9);
                for (int i = 0; i < len; i++) text.Append((char)('a' + rng.Next(26)));
                text.Append(' ');
            }
        }
        File.WriteAllText(path, text.ToString() + "\n");
        return path;
    }

    /// <summary>
    /// Checks that <paramref name="dir"/> loads as a model without materialising it: config valid, every tensor present
    /// with its expected shape (as <c>DecoderModel.FromPretrained</c> checks), and the
    /// tokenizer loads. Returns the block count.
    /// </summary>
    public static int CheckLoads(string dir)
    {
        var config = ModelConfigJson.Load(Path.Combine(dir, "config.json"));
        DecoderModel.Validate(config);
        using var reader = SafetensorsReader.Open(dir);
        DecoderModel.CheckTensors(DecoderModel.ExpectedShapes(config), config, reader.Names, n => reader.GetInfo(n).Shape, $"checkpoint '{dir}'");
        _ = TokenizerLoader.Load(dir);
        return config.NumHiddenLayers;
    }
}
