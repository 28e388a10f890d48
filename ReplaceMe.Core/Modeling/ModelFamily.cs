namespace ReplaceMe.Core.Modeling;

/// <summary>How a family keeps its sliding-window attention in <c>config.json</c>.</summary>
internal enum SlidingWindowStyle
{
    /// <summary>No sliding window.</summary>
    None,

    /// <summary><c>sliding_window</c> alone (MistralConfig: 4096 when absent, null for full attention).</summary>
    Mistral,

    /// <summary><c>use_sliding_window</c>, <c>sliding_window</c> and <c>max_window_layers</c> (Qwen2Config, Qwen3Config).</summary>
    Qwen,
}

/// <summary>
/// Everything that differs between the supported <c>model_type</c>s, in one table: adding a family, or a variant such
/// as Mistral-NeMo or Llama 3.2 that reuses a <c>model_type</c>, touches this file only. Defaults follow the
/// <c>transformers</c> config class of each family. Tensor names are the same for every family; the flags below decide
/// which optional tensors (biases, q/k norms) a block has.
/// </summary>
/// <param name="ModelType">The <c>model_type</c> value.</param>
/// <param name="Architecture">The <c>architectures</c> entry transformers expects.</param>
/// <param name="DefaultMaxPositions"><c>max_position_embeddings</c> when the key is absent.</param>
/// <param name="DefaultHeadDim"><c>head_dim</c> when the key is absent; null means hidden_size / num_attention_heads.</param>
/// <param name="FixedQkvBias">Whether q/k/v projections have biases regardless of <c>attention_bias</c>; null: as <c>attention_bias</c> says.</param>
/// <param name="FixedOutputBias">Whether o_proj has a bias regardless of <c>attention_bias</c>; null: as <c>attention_bias</c> says.</param>
/// <param name="HasMlpBias">Whether the family defines <c>mlp_bias</c>.</param>
/// <param name="QkNorm">Whether each head's queries and keys are RMS-normed (q_norm/k_norm tensors).</param>
/// <param name="SlidingWindow">How the config states a sliding window.</param>
internal sealed record ModelFamily(
    string ModelType, string Architecture, int DefaultMaxPositions, int? DefaultHeadDim, bool? FixedQkvBias, bool? FixedOutputBias,
    bool HasMlpBias, bool QkNorm, SlidingWindowStyle SlidingWindow)
{
    /// <summary>The supported families.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } =
    [
        new("llama", "LlamaForCausalLM", 2048, null, null, null, HasMlpBias: true, QkNorm: false, SlidingWindowStyle.None),
        new("mistral", "MistralForCausalLM", 4096 * 32, null, false, false, HasMlpBias: false, QkNorm: false, SlidingWindowStyle.Mistral),
        new("qwen2", "Qwen2ForCausalLM", 32768, null, true, false, HasMlpBias: false, QkNorm: false, SlidingWindowStyle.Qwen),
        new("qwen3", "Qwen3ForCausalLM", 32768, 128, null, null, HasMlpBias: false, QkNorm: true, SlidingWindowStyle.Qwen),
    ];

    /// <summary>The <c>model_type</c> names, for messages.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(f => f.ModelType).ToArray();

    /// <summary>Whether the config states <c>attention_bias</c> (the biases are not fixed by the family).</summary>
    public bool HasAttentionBiasKey => FixedQkvBias is null || FixedOutputBias is null;

    /// <summary>The family of <paramref name="modelType"/>, or null when it is not supported.</summary>
    public static ModelFamily? Find(string modelType) => All.FirstOrDefault(f => f.ModelType == modelType);

    /// <summary>The family of <paramref name="modelType"/>.</summary>
    /// <param name="modelType">A <c>model_type</c> value.</param>
    /// <param name="where">Where the value came from, for the message (e.g. the config path).</param>
    /// <exception cref="UnsupportedModelException">The model type is not supported.</exception>
    public static ModelFamily Get(string modelType, string where) =>
        Find(modelType) ?? throw new UnsupportedModelException(
            $"model_type '{modelType}' in {where} is not supported; supported: {string.Join(", ", Names)}.");
}
