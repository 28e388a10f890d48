using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Reads and writes a Hugging Face <c>config.json</c> of the Llama family (<c>model_type</c> llama, mistral, qwen2,
/// qwen3) as a <see cref="ModelConfig"/>. Defaults follow the <c>transformers</c> config classes of each family.
/// </summary>
public static class ModelConfigJson
{
    /// <summary>The <c>model_type</c> values this library can run.</summary>
    public static IReadOnlyList<string> SupportedModelTypes => ModelFamily.Names;

    /// <summary>Reads and parses a <c>config.json</c> file.</summary>
    /// <param name="configJsonPath">Path of the <c>config.json</c>.</param>
    /// <exception cref="CheckpointFormatException">The file is missing, not a JSON object, lacks a required key or has a value of the wrong type.</exception>
    /// <exception cref="UnsupportedModelException">The <c>model_type</c> or RoPE scaling type is not supported.</exception>
    public static ModelConfig Load(string configJsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(configJsonPath);
        if (!File.Exists(configJsonPath))
            throw new CheckpointFormatException($"Model config '{configJsonPath}' does not exist (expected a Hugging Face config.json).");
        // A FIFO or device is refused, the size capped, and a key named twice reported (readers disagree on which wins).
        JsonNode? node;
        using (var doc = InputFile.ParseJson(configJsonPath, InputFile.ConfigJsonMaxBytes, "Model config",
            new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }))
        {
            node = doc.RootElement.ValueKind == JsonValueKind.Object ? JsonObject.Create(doc.RootElement)!.DeepClone() : null;
        }
        return node is JsonObject obj
            ? Parse(obj, configJsonPath)
            : throw new CheckpointFormatException($"Model config '{configJsonPath}' must hold a JSON object.");
    }

    /// <summary>Parses a <c>config.json</c> object. The result's <see cref="ModelConfig.Raw"/> is a copy of <paramref name="json"/>.</summary>
    /// <param name="json">The parsed JSON object.</param>
    /// <param name="sourceName">Name used in error messages (usually the file path).</param>
    /// <exception cref="CheckpointFormatException">A required key is missing or a value has the wrong type.</exception>
    /// <exception cref="UnsupportedModelException">The <c>model_type</c> or RoPE scaling type is not supported.</exception>
    public static ModelConfig Parse(JsonObject json, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(sourceName);
        var f = new JsonFields(json, sourceName);
        var modelType = f.OptionalString("model_type")
            ?? throw new CheckpointFormatException($"{sourceName} lacks the required key 'model_type'.");
        var family = ModelFamily.Get(modelType, sourceName);

        // The MLP is gate/up/down with SiLU; a config asking for another activation would silently run the wrong model.
        var activation = f.OptionalString("hidden_act") ?? "silu";
        if (activation is not ("silu" or "swish"))
            throw new UnsupportedModelException(
                $"hidden_act '{activation}' in {sourceName} is not supported: this library's MLP computes SiLU (hidden_act silu or swish).");
        int hidden = f.RequiredInt("hidden_size");
        int heads = f.RequiredInt("num_attention_heads");
        int kvHeads = f.OptionalInt("num_key_value_heads", 1) ?? heads;
        if (heads % kvHeads != 0)
            throw f.Error("num_key_value_heads", $"a divisor of num_attention_heads ({heads})");
        int? headDim = f.OptionalInt("head_dim", 1);
        headDim ??= family.DefaultHeadDim;
        if (headDim is null && hidden % heads != 0)
            throw f.Error("hidden_size", $"a multiple of num_attention_heads ({heads}) when head_dim is absent");

        var ropeParameters = f.OptionalObject("rope_parameters"); // transformers >= 5 moves rope_theta/scaling here
        double ropeTheta = f.OptionalDouble("rope_theta", positive: true)
            ?? (ropeParameters is null ? null : new JsonFields(ropeParameters, $"{sourceName} rope_parameters").OptionalDouble("rope_theta", positive: true))
            ?? 10000.0;
        var scalingObj = f.OptionalObject("rope_scaling") ?? ropeParameters;
        var ropeScaling = scalingObj is null ? null : ParseRopeScaling(scalingObj, sourceName);

        bool attentionBias = f.OptionalBool("attention_bias") ?? false;
        bool mlpBias = f.OptionalBool("mlp_bias") ?? false;
        int layers = f.RequiredInt("num_hidden_layers");
        bool qkvBias = family.FixedQkvBias ?? attentionBias, outputBias = family.FixedOutputBias ?? attentionBias;
        if (!family.HasMlpBias && mlpBias)
            throw new UnsupportedModelException(
                $"mlp_bias=true in {sourceName} is not defined for model_type '{modelType}' (only for {string.Join(", ", ModelFamily.All.Where(m => m.HasMlpBias).Select(m => m.ModelType))}).");

        return new ModelConfig
        {
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = f.RequiredInt("intermediate_size"),
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            VocabSize = f.RequiredInt("vocab_size"),
            MaxPositionEmbeddings = f.OptionalInt("max_position_embeddings", 1) ?? family.DefaultMaxPositions,
            RmsNormEps = f.OptionalDouble("rms_norm_eps", positive: true) ?? 1e-6,
            RopeTheta = ropeTheta,
            RopeScaling = ropeScaling,
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = qkvBias,
            OutputBias = outputBias,
            MlpBias = mlpBias,
            QkNorm = family.QkNorm,
            SlidingWindow = ParseSlidingWindow(f, family, layers, sourceName),
            BosTokenId = f.OptionalInt("bos_token_id"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            PadTokenId = f.OptionalInt("pad_token_id"),
            TorchDtype = ParseDtype(f, sourceName),
            Raw = (JsonObject)json.DeepClone(),
        };
    }

    /// <summary>
    /// The <c>config.json</c> object of <paramref name="config"/>: a copy of <see cref="ModelConfig.Raw"/> (unknown keys
    /// kept in place) with every modelled key written from the record's values.
    /// </summary>
    /// <exception cref="UnsupportedModelException">The record's combination of flags cannot be expressed by its <c>model_type</c>.</exception>
    public static JsonObject ToJson(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var family = ModelFamily.Get(config.ModelType, "the config being written");
        var o = (JsonObject)config.Raw.DeepClone();
        o["model_type"] = config.ModelType;
        // transformers' pipelines and the Hub read "architectures"; configs built in code lack it.
        o["architectures"] ??= new JsonArray(family.Architecture);
        SetInt(o, "hidden_size", config.HiddenSize);
        SetInt(o, "intermediate_size", config.IntermediateSize);
        SetInt(o, "num_hidden_layers", config.NumHiddenLayers);
        SetInt(o, "num_attention_heads", config.NumAttentionHeads);
        SetInt(o, "num_key_value_heads", config.NumKeyValueHeads);
        SetInt(o, "head_dim", config.HeadDim);
        SetInt(o, "vocab_size", config.VocabSize);
        SetInt(o, "max_position_embeddings", config.MaxPositionEmbeddings);
        SetDouble(o, "rms_norm_eps", config.RmsNormEps);
        if (o["rope_parameters"] is JsonObject rp && o["rope_theta"] is null)
            SetDouble(rp, "rope_theta", config.RopeTheta);
        else
            SetDouble(o, "rope_theta", config.RopeTheta);
        WriteRopeScaling(o, config.RopeScaling);
        o["tie_word_embeddings"] = config.TieWordEmbeddings;
        if (family.HasAttentionBiasKey) o["attention_bias"] = config.QkvBias;
        if (family.HasMlpBias) o["mlp_bias"] = config.MlpBias;
        WriteSlidingWindow(o, family, config.SlidingWindow);
        o["bos_token_id"] = config.BosTokenId;
        o["eos_token_id"] = config.EosTokenIds.Count switch
        {
            0 => null,
            1 when o["eos_token_id"] is not JsonArray => config.EosTokenIds[0],
            _ => new JsonArray(config.EosTokenIds.Select(id => (JsonNode?)id).ToArray()),
        };
        if (config.PadTokenId is not null || o.ContainsKey("pad_token_id")) o["pad_token_id"] = config.PadTokenId;
        if (o.ContainsKey("dtype")) o["dtype"] = config.TorchDtype;
        if (o.ContainsKey("torch_dtype") || !o.ContainsKey("dtype")) o["torch_dtype"] = config.TorchDtype;

        // The family decides biases / q-k norm; refuse a record whose flags the JSON cannot carry.
        var back = Parse(o, "the config being written");
        if (back.QkvBias != config.QkvBias || back.OutputBias != config.OutputBias || back.MlpBias != config.MlpBias
            || back.QkNorm != config.QkNorm || back.SlidingWindow != config.SlidingWindow)
            throw new UnsupportedModelException(
                $"model_type '{config.ModelType}' cannot express qkv_bias={config.QkvBias}, output_bias={config.OutputBias}, " +
                $"mlp_bias={config.MlpBias}, qk_norm={config.QkNorm}, sliding_window={config.SlidingWindow?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}.");
        return o;
    }

    private static RopeScaling? ParseRopeScaling(JsonObject obj, string sourceName)
    {
        var f = new JsonFields(obj, $"{sourceName} rope_scaling");
        var type = f.OptionalString("rope_type") ?? f.OptionalString("type") ?? "default";
        switch (type)
        {
            case "default":
                return null;
            case "linear":
            case "dynamic":
                return new RopeScaling(type, RequiredDouble(f, "factor"));
            case "llama3":
                return new RopeScaling(type, RequiredDouble(f, "factor"), RequiredDouble(f, "low_freq_factor"),
                    RequiredDouble(f, "high_freq_factor"), f.RequiredInt("original_max_position_embeddings"));
            default:
                throw new UnsupportedModelException(
                    $"rope_scaling type '{type}' in {sourceName} is not supported; supported: llama3, linear, dynamic.");
        }
    }

    private static double RequiredDouble(JsonFields f, string key) =>
        f.OptionalDouble(key, positive: true) ?? throw f.Error(key, "a number > 0");

    private static int? ParseSlidingWindow(JsonFields f, ModelFamily family, int layers, string sourceName)
    {
        switch (family.SlidingWindow)
        {
            case SlidingWindowStyle.Mistral:
                // MistralConfig defaults to 4096 when the key is absent; an explicit null means full attention.
                return f.Object.ContainsKey("sliding_window") ? f.OptionalInt("sliding_window", 1) : 4096;
            case SlidingWindowStyle.Qwen:
                if (!(f.OptionalBool("use_sliding_window") ?? false)) return null;
                int window = f.OptionalInt("sliding_window", 1) ?? 4096;
                // Layers with index >= max_window_layers slide; only "all" or "none" fits one window per model.
                int fullLayers = f.OptionalInt("max_window_layers", 0) ?? 28;
                if (fullLayers >= layers) return null;
                if (fullLayers == 0) return window;
                throw new UnsupportedModelException(
                    $"{sourceName} mixes full and sliding-window layers (use_sliding_window with max_window_layers={fullLayers} of {layers}); not supported.");
            default:
                return null;
        }
    }

    private static void WriteSlidingWindow(JsonObject o, ModelFamily family, int? window)
    {
        if (family.SlidingWindow == SlidingWindowStyle.Mistral)
        {
            o["sliding_window"] = window;
        }
        else if (family.SlidingWindow == SlidingWindowStyle.Qwen)
        {
            o["use_sliding_window"] = window is not null;
            if (window is int w)
            {
                o["sliding_window"] = w;
                o["max_window_layers"] = 0;
            }
        }
    }

    private static void WriteRopeScaling(JsonObject o, RopeScaling? s)
    {
        string key = o["rope_scaling"] is null && o["rope_parameters"] is JsonObject ? "rope_parameters" : "rope_scaling";
        var existing = o[key] as JsonObject;
        // Keep the source's object when it already says the same thing (byte-stable round trips).
        if (existing is not null && Equals(ParseRopeScaling(existing, "config"), s)) return;
        if (s is null)
        {
            if (key == "rope_parameters") existing!["rope_type"] = "default";
            else o[key] = null;
            return;
        }
        var obj = key == "rope_parameters" ? existing! : new JsonObject();
        obj["rope_type"] = s.Type;
        obj["factor"] = s.Factor;
        if (s.Type == "llama3")
        {
            obj["low_freq_factor"] = s.LowFreqFactor;
            obj["high_freq_factor"] = s.HighFreqFactor;
            obj["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings;
        }
        o[key] = obj;
    }

    private static string ParseDtype(JsonFields f, string sourceName)
    {
        var dtype = f.OptionalString("torch_dtype") ?? f.OptionalString("dtype") ?? "float32";
        return Precision.FromTorchDtypeName(dtype) is not null
            ? dtype
            : throw new UnsupportedModelException($"torch_dtype '{dtype}' in {sourceName} is not supported; expected one of {Precision.TorchDtypeNames}.");
    }

    private static void SetInt(JsonObject o, string key, int value)
    {
        if (o[key] is JsonNode n && JsonFields.TryInt(n, out var old) && old == value) return;
        o[key] = value;
    }

    private static void SetDouble(JsonObject o, string key, double value)
    {
        if (o[key] is JsonNode n && JsonFields.TryDouble(n, out var old) && old == value) return;
        o[key] = value;
    }
}
