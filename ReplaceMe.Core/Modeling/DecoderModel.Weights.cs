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

    private static void Validate(ModelConfig config)
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
    /// <exception cref="CheckpointFormatException">A key is missing or unexpected, or a shape differs; the message names the key and both shapes.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        LoadTensors([.. tensors.Keys], key => tensors[key].shape, key => tensors[key], "the checkpoint");
    }

    private bool IsIgnorableCheckpointKey(string key) =>
        key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (Config.TieWordEmbeddings && key == "lm_head.weight");
}
