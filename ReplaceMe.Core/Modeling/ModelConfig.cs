using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Architecture hyper-parameters of a decoder-only Llama-family model (Llama 1–3.2, Mistral, Qwen2/2.5, Qwen3,
/// SmolLM, TinyLlama), as read from a Hugging Face <c>config.json</c>.
/// </summary>
/// <remarks>
/// <see cref="Raw"/> keeps the original JSON so that saving preserves every key this type does not model;
/// <see cref="WithBlocksRemoved"/> keeps both views consistent after surgery.
/// Parsing lives in <c>Checkpoints/ModelConfigJson</c>.
/// </remarks>
public sealed record ModelConfig
{
    /// <summary>The <c>model_type</c>: <c>llama</c>, <c>mistral</c>, <c>qwen2</c> or <c>qwen3</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary>Residual stream width d (<c>hidden_size</c>).</summary>
    public required int HiddenSize { get; init; }
    /// <summary>MLP inner width (<c>intermediate_size</c>).</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder blocks (<c>num_hidden_layers</c>).</summary>
    public required int NumHiddenLayers { get; init; }
    /// <summary>Query heads (<c>num_attention_heads</c>).</summary>
    public required int NumAttentionHeads { get; init; }
    /// <summary>Key/value heads (<c>num_key_value_heads</c>; equals <see cref="NumAttentionHeads"/> without GQA).</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width (<c>head_dim</c>, default hidden_size / num_attention_heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Vocabulary size.</summary>
    public required int VocabSize { get; init; }
    /// <summary>Longest position the model was trained for (<c>max_position_embeddings</c>).</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>RMSNorm epsilon (<c>rms_norm_eps</c>).</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>RoPE base (<c>rope_theta</c>).</summary>
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>RoPE scaling (<c>rope_scaling</c>), null for none.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>LM head shares the token embedding matrix (<c>tie_word_embeddings</c>).</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>q/k/v projections have a bias (Qwen2; Llama with <c>attention_bias</c>).</summary>
    public bool QkvBias { get; init; }
    /// <summary>The attention output projection has a bias (Llama with <c>attention_bias</c>).</summary>
    public bool OutputBias { get; init; }
    /// <summary>gate/up/down projections have a bias (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }
    /// <summary>Per-head RMSNorm on queries and keys before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }
    /// <summary>Sliding attention window in tokens (Mistral), null for full causal attention.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Beginning-of-sequence token id.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token id(s).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>Padding token id, if the config names one.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>The checkpoint's storage dtype (<c>torch_dtype</c>/<c>dtype</c>: float32, float16, bfloat16).</summary>
    public string TorchDtype { get; init; } = "float32";
    /// <summary>The JSON object this config was read from (or will be written as), including keys not modelled here.</summary>
    public JsonObject Raw { get; init; } = new();

    /// <summary>
    /// The config of the same model with blocks <c>[start, end)</c> removed: <see cref="NumHiddenLayers"/> and
    /// <c>num_hidden_layers</c> shortened, per-layer arrays in <see cref="Raw"/> (<c>layer_types</c>, and any other
    /// array whose length equals the old layer count) lose the removed entries, and <c>max_window_layers</c> is clamped.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is empty or outside <c>[0, NumHiddenLayers)</c>.</exception>
    public ModelConfig WithBlocksRemoved(int start, int end)
    {
        if (start < 0 || end > NumHiddenLayers || start >= end)
            throw new ArgumentOutOfRangeException(nameof(start), $"Cut [{start}, {end}) must be a non-empty range inside [0, {NumHiddenLayers}).");
        int removed = end - start, newCount = NumHiddenLayers - removed;
        var raw = (JsonObject)Raw.DeepClone();
        raw["num_hidden_layers"] = newCount;
        foreach (var key in raw.Select(kv => kv.Key).ToList())
        {
            if (raw[key] is JsonArray arr && arr.Count == NumHiddenLayers)
            {
                var kept = new JsonArray();
                for (int i = 0; i < arr.Count; i++)
                    if (i < start || i >= end) kept.Add(arr[i]?.DeepClone());
                raw[key] = kept;
            }
        }
        if (raw["max_window_layers"] is JsonValue mwl && mwl.TryGetValue<int>(out var w))
        {
            // Layers below max_window_layers use full attention; removed ones shift the boundary down.
            int shifted = w <= start ? w : w >= end ? w - removed : start;
            raw["max_window_layers"] = Math.Min(shifted, newCount);
        }
        return this with { NumHiddenLayers = newCount, Raw = raw };
    }
}

/// <summary>RoPE scaling of <c>config.json</c>'s <c>rope_scaling</c>.</summary>
/// <param name="Type">"llama3", "linear" or "dynamic" (only llama3 and linear change the forward at short lengths).</param>
/// <param name="Factor">Scaling factor.</param>
/// <param name="LowFreqFactor">llama3 low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3 high-frequency factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3 original context length.</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1.0, double HighFreqFactor = 4.0, int OriginalMaxPositionEmbeddings = 8192);
