using System.Text.Json;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>The parts of a Hugging Face <c>tokenizer_config.json</c> that change encoding: BOS/EOS flags and token names.</summary>
internal sealed record TokenizerConfigJson
{
    /// <summary>The file name looked for beside the tokenizer.</summary>
    public const string FileName = "tokenizer_config.json";

    /// <summary><c>add_bos_token</c>, null when the file does not say.</summary>
    public bool? AddBosToken { get; init; }
    /// <summary><c>add_eos_token</c>, null when the file does not say.</summary>
    public bool? AddEosToken { get; init; }
    /// <summary><c>bos_token</c> text.</summary>
    public string? BosToken { get; init; }
    /// <summary><c>eos_token</c> text.</summary>
    public string? EosToken { get; init; }
    /// <summary><c>pad_token</c> text.</summary>
    public string? PadToken { get; init; }
    /// <summary><c>added_tokens_decoder</c>: id → (content, special).</summary>
    public IReadOnlyDictionary<int, (string Content, bool Special)> AddedTokens { get; init; } = new Dictionary<int, (string, bool)>();

    /// <summary>Reads <c>tokenizer_config.json</c> from <paramref name="modelDir"/>; an empty config when absent.</summary>
    /// <exception cref="CheckpointFormatException">The file is not valid JSON or a key has the wrong type.</exception>
    public static TokenizerConfigJson Read(string modelDir)
    {
        var path = Path.Combine(modelDir, FileName);
        if (!File.Exists(path)) return new TokenizerConfigJson();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException($"{path}: expected a JSON object.");
            var added = new Dictionary<int, (string, bool)>();
            if (root.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in dec.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, out var id)) throw new CheckpointFormatException($"{path}: added_tokens_decoder key '{p.Name}' is not an integer id.");
                    var content = p.Value.GetProperty("content").GetString() ?? "";
                    bool special = p.Value.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                    added[id] = (content, special);
                }
            }
            return new TokenizerConfigJson
            {
                AddBosToken = Flag(root, "add_bos_token", path),
                AddEosToken = Flag(root, "add_eos_token", path),
                BosToken = TokenText(root, "bos_token"),
                EosToken = TokenText(root, "eos_token"),
                PadToken = TokenText(root, "pad_token"),
                AddedTokens = added,
            };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new CheckpointFormatException($"{path}: malformed tokenizer config ({ex.Message})", ex);
        }
    }

    private static bool? Flag(JsonElement root, string key, string path)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new CheckpointFormatException($"{path}: '{key}' must be true or false."),
        };
    }

    // A special token is written either as a string or as {"content": "...", ...} (AddedToken serialization).
    private static string? TokenText(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };
    }
}
