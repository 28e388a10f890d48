using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

public sealed partial class DecoderModel
{
    /// <summary>
    /// Builds a model with random weights (normal, std 0.02, like Hugging Face's initializer; norms 1, biases 0):
    /// for tests, benchmarks, or as the shell that <see cref="LoadStateDict"/> fills.
    /// </summary>
    /// <param name="config">Architecture.</param>
    /// <param name="options">Device and compute dtype; CPU float32 when null.</param>
    /// <param name="seed">Seed for reproducible weights; null draws from torch's global generator.</param>
    /// <exception cref="UnsupportedModelException">Unknown model type, rope scaling or dtype, or inconsistent head counts.</exception>
    public static DecoderModel Create(ModelConfig config, ModelLoadOptions? options = null, int? seed = null)
    {
        var model = CreateShell(config, options);
        model.InitializeRandom(seed);
        return model;
    }

    /// <summary>A validated model whose weights are TorchSharp's default init, to be overwritten by a checkpoint.</summary>
    private static DecoderModel CreateShell(ModelConfig config, ModelLoadOptions? options)
    {
        ArgumentNullException.ThrowIfNull(config);
        TorchRuntime.EnsureLoaded();
        Validate(config);
        options ??= new ModelLoadOptions();
        if (!Precision.IsSupportedCompute(options.DType))
            throw new UnsupportedModelException($"Compute dtype {options.DType} is not supported (use Float32, Float64, BFloat16 or Float16).");
        return new DecoderModel(config, options.ResolvedDevice, options.DType);
    }

    internal static void Validate(ModelConfig config)
    {
        ModelFamily.Get(config.ModelType, "the model config");
        if (config.HiddenSize <= 0 || config.IntermediateSize <= 0 || config.NumHiddenLayers < 0 || config.VocabSize <= 0 || config.HeadDim <= 0 || config.HeadDim % 2 != 0)
            throw new UnsupportedModelException(
                $"Config sizes must be positive (hidden_size {config.HiddenSize}, intermediate_size {config.IntermediateSize}, " +
                $"num_hidden_layers {config.NumHiddenLayers}, vocab_size {config.VocabSize}) and head_dim ({config.HeadDim}) even.");
        if (config.NumAttentionHeads <= 0 || config.NumKeyValueHeads <= 0 || config.NumAttentionHeads % config.NumKeyValueHeads != 0)
            throw new UnsupportedModelException(
                $"num_attention_heads ({config.NumAttentionHeads}) must be a positive multiple of num_key_value_heads ({config.NumKeyValueHeads}).");
        if (config.SlidingWindow is <= 0)
            throw new UnsupportedModelException($"sliding_window must be positive, got {config.SlidingWindow}.");
        RotaryEmbedding.Validate(config);
    }

    private void InitializeRandom(int? seed)
    {
        using var noGrad = no_grad();
        using var generator = seed is int s ? new Generator((ulong)s, CPU) : null;
        foreach (var (name, parameter) in named_parameters())
        {
            using var scope = NewDisposeScope();
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                parameter.fill_(HeldScalars.One);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else
                parameter.copy_(HeldScalars.Normal(0.0, 0.02, parameter.shape, ScalarType.Float32, CPU, generator));
        }
    }

    /// <summary>
    /// Copies checkpoint tensors into the model, converting them to the compute dtype and device. Every model key must be
    /// present with the model's shape and no other key may appear (except <c>lm_head.weight</c> of a tied model and the
    /// legacy <c>rotary_emb.inv_freq</c> buffers, which Hugging Face also ignores). Nothing is copied unless all checks pass.
    /// </summary>
    /// <param name="tensors">Tensors under their Hugging Face names; not disposed.</param>
    /// <exception cref="CheckpointFormatException">A key is missing or unexpected, a shape differs (the message names the key and
    /// both shapes), or a tensor has NaN or infinite values.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        CheckTensors(ExpectedShapes(Config), Config, [.. tensors.Keys], key => tensors[key].shape, "the checkpoint");
        foreach (var (key, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            using var scope = NewDisposeScope();
            if (tensor.is_floating_point() && !tensor.isfinite().all().item<bool>())
                throw new CheckpointFormatException($"Tensor '{key}' of the checkpoint has NaN or infinite values; nothing was copied.");
        }
        LoadTensors(key => tensors[key], "the checkpoint");
    }

    internal static bool IsIgnorableCheckpointKey(ModelConfig config, string key) =>
        key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && key == "lm_head.weight");

    /// <summary>
    /// Every Hugging Face tensor name the config implies, with its shape, computed without allocating anything (the
    /// test <c>ExpectedShapes_equal_the_allocated_parameters</c> keeps it equal to the allocated <c>state_dict()</c>).
    /// </summary>
    internal static Dictionary<string, IReadOnlyList<long>> ExpectedShapes(ModelConfig c)
    {
        long d = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, ff = c.IntermediateSize;
        var s = new Dictionary<string, IReadOnlyList<long>>(StringComparer.Ordinal)
        {
            ["model.embed_tokens.weight"] = [c.VocabSize, d],
            ["model.norm.weight"] = [d],
        };
        if (!c.TieWordEmbeddings) s["lm_head.weight"] = [c.VocabSize, d];
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            s[p + "input_layernorm.weight"] = [d];
            s[p + "post_attention_layernorm.weight"] = [d];
            s[p + "self_attn.q_proj.weight"] = [q, d];
            s[p + "self_attn.k_proj.weight"] = [kv, d];
            s[p + "self_attn.v_proj.weight"] = [kv, d];
            s[p + "self_attn.o_proj.weight"] = [d, q];
            if (c.QkvBias)
            {
                s[p + "self_attn.q_proj.bias"] = [q];
                s[p + "self_attn.k_proj.bias"] = [kv];
                s[p + "self_attn.v_proj.bias"] = [kv];
            }
            if (c.OutputBias) s[p + "self_attn.o_proj.bias"] = [d];
            if (c.QkNorm)
            {
                s[p + "self_attn.q_norm.weight"] = [c.HeadDim];
                s[p + "self_attn.k_norm.weight"] = [c.HeadDim];
            }
            s[p + "mlp.gate_proj.weight"] = [ff, d];
            s[p + "mlp.up_proj.weight"] = [ff, d];
            s[p + "mlp.down_proj.weight"] = [d, ff];
            if (c.MlpBias)
            {
                s[p + "mlp.gate_proj.bias"] = [ff];
                s[p + "mlp.up_proj.bias"] = [ff];
                s[p + "mlp.down_proj.bias"] = [d];
            }
        }
        return s;
    }
}
