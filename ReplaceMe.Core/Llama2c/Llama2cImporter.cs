using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Llama2c;

/// <summary>Converts a llama2.c checkpoint (legacy <c>.bin</c>, fp32) and its <c>tokenizer.model</c> into a Hugging Face Llama folder.</summary>
public static partial class Llama2cImporter
{
    /// <summary>
    /// Writes <paramref name="outDir"/> with <c>config.json</c>, <c>model.safetensors</c> (Hugging Face tensor names),
    /// <c>tokenizer.model</c> (copied byte for byte), <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c> and <c>generation_config.json</c> (as transformers writes them).
    /// The rows of wq and wk are permuted per head from llama2.c's interleaved RoPE pairs (2i, 2i+1) to Hugging Face's
    /// rotate-half pairs (i, i + hs/2): rows 0, 2, 4, … then 1, 3, 5, …. The folder is built beside the target and moved
    /// into place at the end.
    /// </summary>
    /// <param name="weightsPath">The llama2.c <c>.bin</c> file (7-int header, fp32 tensors, tied or separate classifier).</param>
    /// <param name="tokenizerModelPath">The model's SentencePiece <c>tokenizer.model</c>.</param>
    /// <param name="outDir">Folder to create.</param>
    /// <param name="overwrite">Replace <paramref name="outDir"/> if it exists.</param>
    /// <param name="logger">Receives a summary line.</param>
    /// <exception cref="FileNotFoundException">An input file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">Bad header, file length not matching the header (expected and actual sizes are
    /// named), or a tokenizer that does not load or whose vocabulary size differs from the header's.</exception>
    /// <exception cref="IOException"><paramref name="outDir"/> exists and <paramref name="overwrite"/> is false.</exception>
    public static void Import(string weightsPath, string tokenizerModelPath, string outDir, bool overwrite = false, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(weightsPath);
        ArgumentException.ThrowIfNullOrEmpty(tokenizerModelPath);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"llama2.c weights not found: {weightsPath}", weightsPath);
        if (!File.Exists(tokenizerModelPath)) throw new FileNotFoundException($"tokenizer.model not found: {tokenizerModelPath}", tokenizerModelPath);
        TorchRuntime.EnsureLoaded();
        logger ??= NullLogger.Instance;

        using var stream = InputFile.OpenRegular(weightsPath, InputFile.Streamed, "llama2.c weights");
        var header = Llama2cHeader.Read(weightsPath, stream);
        if (stream.Length != header.ExpectedFileBytes)
            throw new CheckpointFormatException(
                $"{weightsPath}: {stream.Length} bytes, but its header ({header.Dim}d, {header.Layers} layers, vocab {header.VocabSize}, " +
                $"{(header.SharedClassifier ? "shared" : "separate")} classifier, seq_len {header.SeqLen}) implies {header.ExpectedFileBytes} bytes.");
        var tokenizer = SentencePieceTextTokenizer.Load(tokenizerModelPath, new TokenizerConfigJson());
        if (tokenizer.VocabSize != header.VocabSize)
            throw new CheckpointFormatException(
                $"{tokenizerModelPath}: vocabulary of {tokenizer.VocabSize} pieces, but {weightsPath} has vocab_size {header.VocabSize}.");

        using var output = OutputFolder.Create(outDir, overwrite, [weightsPath, tokenizerModelPath], logger);
        using (var scope = NewDisposeScope())
        {
            SafetensorsWriter.Write(output.Path, ReadTensors(stream, header));
        }
        File.Copy(tokenizerModelPath, Path.Combine(output.Path, SentencePieceTextTokenizer.FileName));
        WriteJson(Path.Combine(output.Path, "config.json"), ConfigJson(header));
        WriteJson(Path.Combine(output.Path, TokenizerConfigJson.FileName), TokenizerConfig(header));
        // As transformers writes them: a generation config derived from the model config, and the special tokens map.
        WriteJson(Path.Combine(output.Path, "generation_config.json"), new JsonObject { ["_from_model_config"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2 });
        WriteJson(Path.Combine(output.Path, "special_tokens_map.json"), new JsonObject
        {
            ["bos_token"] = SpecialToken("<s>"),
            ["eos_token"] = SpecialToken("</s>"),
            ["unk_token"] = SpecialToken("<unk>"),
        });
        output.Commit();
        LogImported(logger, weightsPath, output.TargetPath, header.Layers, header.Dim, header.VocabSize, header.SharedClassifier);
    }

    /// <summary>Reads every tensor in file order and names it the Hugging Face way. Shapes are PyTorch Linear <c>[out, in]</c>.</summary>
    private static List<KeyValuePair<string, Tensor>> ReadTensors(Stream s, Llama2cHeader h)
    {
        int d = h.Dim, f = h.HiddenDim, kv = h.KvDim, layers = h.Layers;
        var list = new List<KeyValuePair<string, Tensor>>();
        void PerLayer(string name, int rows, int cols, Func<float[], float[]>? transform = null)
        {
            for (int i = 0; i < layers; i++)
            {
                var data = ReadFloats(s, (long)rows * cols);
                if (transform is not null) data = transform(data);
                long[] shape = cols == 1 ? [rows] : [rows, cols];
                list.Add(new($"model.layers.{i}.{name}.weight", tensor(data, shape)));
            }
        }
        var embed = tensor(ReadFloats(s, (long)h.VocabSize * d), [h.VocabSize, d]);
        list.Add(new("model.embed_tokens.weight", embed));
        PerLayer("input_layernorm", d, 1);
        PerLayer("self_attn.q_proj", d, d, w => InterleavedToHalves(w, h.Heads, h.HeadSize, d));
        PerLayer("self_attn.k_proj", kv, d, w => InterleavedToHalves(w, h.KvHeads, h.HeadSize, d));
        PerLayer("self_attn.v_proj", kv, d);
        PerLayer("self_attn.o_proj", d, d);
        PerLayer("post_attention_layernorm", d, 1);
        PerLayer("mlp.gate_proj", f, d); // w1
        PerLayer("mlp.down_proj", d, f); // w2
        PerLayer("mlp.up_proj", f, d);   // w3
        list.Add(new("model.norm.weight", tensor(ReadFloats(s, d), [d])));
        s.Seek((long)h.SeqLen * h.HeadSize * sizeof(float), SeekOrigin.Current); // RoPE tables: recomputed by the model
        // A tied classifier is not stored: Hugging Face ties lm_head to embed_tokens from tie_word_embeddings.
        if (!h.SharedClassifier) list.Add(new("lm_head.weight", tensor(ReadFloats(s, (long)h.VocabSize * d), [h.VocabSize, d])));
        return list;
    }

    /// <summary>
    /// Reorders the rows of one layer's <c>[heads·hs, cols]</c> q or k weight: within each head, row j of the result is
    /// row 2j (first half) or row 2(j − hs/2) + 1 (second half) of llama2.c's layout.
    /// </summary>
    internal static float[] InterleavedToHalves(float[] w, int heads, int headSize, int cols)
    {
        var result = new float[w.Length];
        int half = headSize / 2;
        for (int head = 0; head < heads; head++)
        {
            for (int j = 0; j < headSize; j++)
            {
                int src = j < half ? 2 * j : 2 * (j - half) + 1;
                Array.Copy(w, ((long)head * headSize + src) * cols, result, ((long)head * headSize + j) * cols, cols);
            }
        }
        return result;
    }

    private static float[] ReadFloats(Stream s, long count)
    {
        var data = new float[count];
        s.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        if (!BitConverter.IsLittleEndian)
            for (long i = 0; i < count; i++) data[i] = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(data[i])));
        return data;
    }

    private static JsonObject ConfigJson(Llama2cHeader h)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = h.Dim,
            ["intermediate_size"] = h.HiddenDim,
            ["num_hidden_layers"] = h.Layers,
            ["num_attention_heads"] = h.Heads,
            ["num_key_value_heads"] = h.KvHeads,
            ["head_dim"] = h.HeadSize,
            ["vocab_size"] = h.VocabSize,
            ["max_position_embeddings"] = h.SeqLen,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["rope_scaling"] = null,
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["mlp_bias"] = false,
            ["tie_word_embeddings"] = h.SharedClassifier,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["initializer_range"] = 0.02,
            ["pretraining_tp"] = 1,
            ["use_cache"] = true,
            ["torch_dtype"] = "float32",
        };
        ModelConfigJson.Parse(json, "the imported config.json"); // same validation every loader applies
        return json;
    }

    private static JsonObject TokenizerConfig(Llama2cHeader h)
    {
        static JsonObject Special(string content) => new()
        {
            ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
        };
        return new JsonObject
        {
            ["tokenizer_class"] = "LlamaTokenizer",
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["pad_token"] = null,
            ["legacy"] = true,
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = h.SeqLen,
            ["added_tokens_decoder"] = new JsonObject { ["0"] = Special("<unk>"), ["1"] = Special("<s>"), ["2"] = Special("</s>") },
        };
    }

    // Token texts such as "<s>" are written literally, as Python's json module (and so transformers) writes them.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static JsonObject SpecialToken(string content) => new()
    {
        ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false,
    };

    private static void WriteJson(string path, JsonObject json) => File.WriteAllText(path, json.ToJsonString(Indented) + "\n");

    [LoggerMessage(EventId = 300, Level = LogLevel.Information,
        Message = "Imported llama2.c checkpoint {Weights} into {OutDir}: {Layers} layers, dim {Dim}, vocab {Vocab}, shared classifier {Shared}")]
    private static partial void LogImported(ILogger logger, string weights, string outDir, int layers, int dim, int vocab, bool shared);
}
