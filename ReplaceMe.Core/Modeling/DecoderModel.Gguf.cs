using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

public sealed partial class DecoderModel
{
    /// <summary>
    /// Writes the model as one GGUF (version 3) file that llama.cpp and its clients (LLamaSharp, Ollama, LM Studio) load:
    /// the architecture keys, the tokenizer (SentencePiece as <c>llama</c>, byte-level BPE as <c>gpt2</c> with its
    /// pre-tokenizer name), special token ids, and every tensor under llama.cpp's names. Llama and Mistral map to the
    /// <c>llama</c> architecture, whose query and key rows are reordered from Hugging Face's rotate-half layout to the
    /// interleaved pairs llama.cpp rotates; Qwen2 and Qwen3 map to <c>qwen2</c> and <c>qwen3</c> unchanged. Llama 3
    /// RoPE scaling is written as the per-frequency factor tensor <c>rope_freqs.weight</c>, linear scaling as keys.
    /// The file is written to a temporary sibling and renamed into place when complete.
    /// </summary>
    /// <param name="path">Target <c>.gguf</c> file.</param>
    /// <param name="options">Storage dtype, overwrite, alignment, name, tokenizer folder, extra keys; defaults when null.</param>
    /// <param name="progress">Receives stage <c>"gguf"</c> after each tensor (fraction of tensors written, tensor name).</param>
    /// <param name="logger">Receives one line per export and one per matrix stored as F16 instead of Q8_0.</param>
    /// <param name="cancellationToken">Checked before each tensor; cancelling leaves no file (and any old one untouched).</param>
    /// <exception cref="UnsupportedModelException">The model uses something its GGUF architecture cannot express
    /// (biases or RoPE scaling llama.cpp does not read for that architecture), or a pre-tokenizer llama.cpp lacks.</exception>
    /// <exception cref="CheckpointFormatException">The tokenizer files are missing or malformed.</exception>
    /// <exception cref="ArgumentException">No tokenizer folder is known, the alignment is invalid, or an extra key collides with a written one.</exception>
    /// <exception cref="IOException">The target is a folder, or exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output needs plus a margin; checked before anything is written.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no file was written.</exception>
    public void SaveGguf(string path, GgufExportOptions? options = null, IProgress<PruningProgress>? progress = null,
        ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new GgufExportOptions();
        logger ??= NullLogger.Instance;
        GgufWriter.CheckAlignment(options.Alignment);
        var tokenizerDir = options.TokenizerDirectory ?? _sourceDirectory
            ?? throw new ArgumentException("The model was not loaded from a folder; set GgufExportOptions.TokenizerDirectory to the folder with its tokenizer files.", nameof(options));
        var plan = GgufPlan.For(Config);
        var metadata = new GgufMetadata();
        metadata.AddString("general.architecture", plan.Architecture);
        metadata.AddString("general.type", "model");
        metadata.AddString("general.name", options.Name ?? (_sourceDirectory is { } src ? Path.GetFileName(src) : Config.ModelType));
        metadata.AddUInt32("general.file_type", FileType(options.DType));
        metadata.AddUInt32("general.quantization_version", 2);
        metadata.AddUInt32("general.alignment", (uint)options.Alignment);
        plan.AddHyperParameters(metadata, Config);
        GgufVocabulary.Add(metadata, tokenizerDir, Config.VocabSize);
        foreach (var (key, value) in options.ExtraMetadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (metadata.Contains(key)) throw new ArgumentException($"GgufExportOptions.ExtraMetadata key '{key}' is one the exporter writes itself.", nameof(options));
            metadata.AddString(key, value);
        }

        var tensors = new List<GgufTensor>();
        if (plan.RopeFactors is { } factors)
            tensors.Add(new GgufTensor("rope_freqs.weight", [factors.Length], GgmlType.F32, s => s.Write(MemoryMarshal.AsBytes(factors.AsSpan()))));
        var state = state_dict();
        foreach (var (hfName, tensor) in state)
        {
            var name = GgufPlan.TensorName(hfName);
            var permuteHeads = plan.PermuteQk ? QkHeads(hfName) : null;
            var shape = tensor.shape;
            long[] dims = [.. Enumerable.Reverse(shape)];
            var type = shape.Length == 1 ? GgmlType.F32 : options.DType switch
            {
                GgufDType.F32 => GgmlType.F32,
                GgufDType.F16 => GgmlType.F16,
                GgufDType.BF16 => GgmlType.BF16,
                _ when dims[0] % GgufQuantization.Q8BlockSize == 0 => GgmlType.Q8_0,
                _ => GgmlType.F16,
            };
            if (options.DType == GgufDType.Q8_0 && shape.Length > 1 && type != GgmlType.Q8_0 && logger.IsEnabled(LogLevel.Information)) LogQ8Fallback(logger, name, dims[0]);
            tensors.Add(new GgufTensor(name, dims, type, s => WriteTensor(tensor, permuteHeads, type, s)));
        }

        int total = tensors.Count;
        // Tensor data, padding and a bound on the header (names, dims); the vocabulary's few MB are within the margin.
        DiskSpace.EnsureFits(Path.GetDirectoryName(Path.GetFullPath(path))!, tensors.Sum(t => t.ByteCount + options.Alignment + 256L), "the GGUF file");
        GgufWriter.WriteFileAtomically(path, options.Overwrite, stream => GgufWriter.Write(stream, metadata, tensors, options.Alignment,
            i => progress?.Report(new PruningProgress("gguf", (i + 1) / (double)total, Message: tensors[i].Name)), cancellationToken));
        var target = Path.GetFullPath(path);
        var dtypeName = options.DType.ToString();
        LogGgufSaved(logger, target, plan.Architecture, Config.NumHiddenLayers, dtypeName);
    }

    /// <summary>Heads of a q/k projection (weight or bias) whose rows the <c>llama</c> architecture wants interleaved; null for other tensors.</summary>
    private int? QkHeads(string hfName) =>
        hfName.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal) || hfName.EndsWith(".self_attn.q_proj.bias", StringComparison.Ordinal) ? Config.NumAttentionHeads
        : hfName.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal) || hfName.EndsWith(".self_attn.k_proj.bias", StringComparison.Ordinal) ? Config.NumKeyValueHeads
        : null;

    private static uint FileType(GgufDType dtype) => dtype switch
    {
        GgufDType.F32 => 0,   // ALL_F32
        GgufDType.F16 => 1,   // MOSTLY_F16
        GgufDType.Q8_0 => 7,  // MOSTLY_Q8_0
        GgufDType.BF16 => 32, // MOSTLY_BF16
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown GGUF dtype."),
    };

    /// <summary>
    /// Writes one tensor's data. For q/k rows of the <c>llama</c> architecture, each head's rows [x₀…x_{h/2−1}, y₀…y_{h/2−1}]
    /// (Hugging Face rotates the first half against the second) become [x₀, y₀, x₁, y₁, …] (llama.cpp rotates adjacent pairs).
    /// </summary>
    private static void WriteTensor(Tensor parameter, int? permuteHeads, GgmlType type, Stream stream)
    {
        using var scope = NewDisposeScope();
        var t = parameter.detach().to(ScalarType.Float32).cpu();
        if (permuteHeads is int heads)
        {
            var shape = t.shape;
            long rows = shape[0];
            long[] split = [heads, 2, rows / heads / 2, .. shape.Skip(1)];
            t = t.reshape(split).transpose(1, 2).reshape(shape);
        }
        t = t.contiguous();
        switch (type)
        {
            case GgmlType.F32: TensorBytes.Write(t, stream); break;
            case GgmlType.F16: TensorBytes.Write(t, stream, ScalarType.Float16); break;
            case GgmlType.BF16: TensorBytes.Write(t, stream, ScalarType.BFloat16); break;
            case GgmlType.Q8_0: WriteQ8(t, stream); break;
            default: throw new InvalidOperationException($"Unexpected ggml type {type}.");
        }
    }

    private static void WriteQ8(Tensor matrix, Stream stream)
    {
        var flat = matrix.view(-1);
        long n = flat.numel();
        const long chunk = 1L << 20; // a multiple of the block size
        var buffer = new byte[chunk / GgufQuantization.Q8BlockSize * GgufQuantization.Q8BlockBytes];
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(chunk, n - start);
            var part = flat.narrow(0, start, count);
            var values = MemoryMarshal.Cast<byte, float>(part.bytes);
            int bytes = (int)(count / GgufQuantization.Q8BlockSize * GgufQuantization.Q8BlockBytes);
            GgufQuantization.QuantizeQ8(values, buffer.AsSpan(0, bytes));
            stream.Write(buffer, 0, bytes);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Wrote GGUF {Path} ({Architecture}, {Blocks} blocks, {DType})")]
    private static partial void LogGgufSaved(ILogger logger, string path, string architecture, int blocks, string dtype);

    [LoggerMessage(Level = LogLevel.Information, Message = "GGUF tensor {Name} stays F16: its rows of {Length} values are not a multiple of 32, which Q8_0 needs")]
    private static partial void LogQ8Fallback(ILogger logger, string name, long length);
}

/// <summary>How one model family becomes a llama.cpp architecture: its name, whether q/k rows are permuted, the RoPE factor tensor.</summary>
internal sealed record GgufPlan(string Architecture, bool PermuteQk, float[]? RopeFactors)
{
    /// <summary>The plan for <paramref name="config"/>.</summary>
    /// <exception cref="UnsupportedModelException">The config needs something the target architecture does not read.</exception>
    public static GgufPlan For(ModelConfig config)
    {
        var scaling = config.RopeScaling?.Type;
        string arch = config.ModelType switch
        {
            "llama" or "mistral" => "llama",
            "qwen2" => "qwen2",
            "qwen3" => "qwen3",
            _ => throw new UnsupportedModelException($"model_type '{config.ModelType}' has no GGUF mapping (supported: llama, mistral, qwen2, qwen3)."),
        };
        if (arch == "qwen2" && (config.OutputBias || config.MlpBias))
            throw new UnsupportedModelException("A qwen2 model with an o_proj or MLP bias cannot be written as GGUF: llama.cpp's qwen2 architecture reads only q/k/v biases.");
        if (arch == "qwen3" && (config.QkvBias || config.OutputBias || config.MlpBias))
            throw new UnsupportedModelException("A qwen3 model with attention or MLP biases cannot be written as GGUF: llama.cpp's qwen3 architecture has no bias tensors.");
        if (scaling == "llama3" && arch != "llama")
            throw new UnsupportedModelException($"llama3 RoPE scaling on a {config.ModelType} model cannot be written as GGUF: only llama.cpp's llama architecture reads rope_freqs.weight.");
        float[]? factors = null;
        if (scaling == "llama3")
        {
            var scaled = RotaryEmbedding.ComputeInverseFrequencies(config, config.RopeTheta);
            var plain = RotaryEmbedding.ComputeInverseFrequencies(config with { RopeScaling = null }, config.RopeTheta);
            factors = [.. plain.Zip(scaled, (p, s) => (float)(p / s))];
        }
        return new GgufPlan(arch, PermuteQk: arch == "llama", factors);
    }

    /// <summary>
    /// The architecture keys. <c>context_length</c> is <c>max_position_embeddings</c>, capped at the sliding window
    /// when the model has one (llama.cpp attends fully, which equals windowed attention only inside the window) and
    /// at which dynamic NTK scaling has not started yet.
    /// </summary>
    public void AddHyperParameters(GgufMetadata m, ModelConfig c)
    {
        string a = Architecture;
        long context = c.MaxPositionEmbeddings;
        if (c.SlidingWindow is int window) context = Math.Min(context, window);
        m.AddUInt32($"{a}.context_length", (uint)context);
        m.AddUInt32($"{a}.embedding_length", (uint)c.HiddenSize);
        m.AddUInt32($"{a}.block_count", (uint)c.NumHiddenLayers);
        m.AddUInt32($"{a}.feed_forward_length", (uint)c.IntermediateSize);
        m.AddUInt32($"{a}.attention.head_count", (uint)c.NumAttentionHeads);
        m.AddUInt32($"{a}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        m.AddUInt32($"{a}.attention.key_length", (uint)c.HeadDim);
        m.AddUInt32($"{a}.attention.value_length", (uint)c.HeadDim);
        m.AddFloat32($"{a}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        m.AddFloat32($"{a}.rope.freq_base", (float)c.RopeTheta);
        m.AddUInt32($"{a}.rope.dimension_count", (uint)c.HeadDim);
        m.AddUInt32($"{a}.vocab_size", (uint)c.VocabSize);
        if (c.RopeScaling is { Type: "linear" } linear)
        {
            m.AddString($"{a}.rope.scaling.type", "linear");
            m.AddFloat32($"{a}.rope.scaling.factor", (float)linear.Factor);
        }
    }

    /// <summary>llama.cpp's name for a Hugging Face tensor name.</summary>
    /// <exception cref="UnsupportedModelException">A tensor with no llama.cpp name.</exception>
    public static string TensorName(string hf)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        const string layers = "model.layers.";
        if (hf.StartsWith(layers, StringComparison.Ordinal))
        {
            int dot = hf.IndexOf('.', layers.Length);
            var index = hf[layers.Length..dot];
            var rest = hf[(dot + 1)..];
            int last = rest.LastIndexOf('.');
            var module = rest[..last];
            var suffix = rest[(last + 1)..];
            string? mapped = module switch
            {
                "input_layernorm" => "attn_norm",
                "post_attention_layernorm" => "ffn_norm",
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "self_attn.q_norm" => "attn_q_norm",
                "self_attn.k_norm" => "attn_k_norm",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                _ => null,
            };
            if (mapped is not null) return $"blk.{index}.{mapped}.{suffix}";
        }
        throw new UnsupportedModelException($"Tensor '{hf}' has no llama.cpp GGUF name.");
    }
}
