using System.Globalization;
using System.Text.Json;
using ReplaceMe.Core.Runtime;

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
    /// <summary>The file read (null when there was none), named in errors.</summary>
    public string? SourcePath { get; init; }
    /// <summary><c>added_tokens_decoder</c>: id → (content, special).</summary>
    public IReadOnlyDictionary<int, (string Content, bool Special)> AddedTokens { get; init; } = new Dictionary<int, (string, bool)>();

    /// <summary>Reads <c>tokenizer_config.json</c> from <paramref name="modelDir"/>; an empty config when absent.</summary>
    /// <exception cref="CheckpointFormatException">The file is not a regular file, over its size cap, not valid JSON,
    /// names a key twice, has a key of the wrong type or an added token with a negative id.</exception>
    public static TokenizerConfigJson Read(string modelDir)
    {
        var path = Path.Combine(modelDir, FileName);
        if (!File.Exists(path)) return new TokenizerConfigJson();
        try
        {
            using var doc = InputFile.ParseJson(path, InputFile.TokenizerConfigMaxBytes, "Tokenizer config");
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException($"{path}: expected a JSON object.");
            var added = new Dictionary<int, (string, bool)>();
            if (root.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in dec.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id))
                        throw new CheckpointFormatException($"{path}: added_tokens_decoder key '{p.Name}' is not an integer id.");
                    if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                        throw new CheckpointFormatException($"{path}: added_tokens_decoder['{p.Name}'] needs a string 'content'.");
                    var content = c.GetString()!;
                    if (id < 0)
                        throw new CheckpointFormatException($"{path}: added token '{content}' has id {id}; token ids must be non-negative.");
                    bool special = p.Value.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                    added[id] = (content, special);
                }
            }
            return new TokenizerConfigJson
            {
                SourcePath = path,
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

    /// <summary>
    /// Refuses an <c>added_tokens_decoder</c> id at or above <paramref name="tokenCount"/> + the number of entries: the
    /// ids a tokenizer with <paramref name="tokenCount"/> tokens can give its added tokens (Hugging Face numbers a new
    /// added token after the existing ones).
    /// </summary>
    /// <exception cref="CheckpointFormatException">An id out of range; the message names the file, the token and the id.</exception>
    public void CheckAddedTokenIds(long tokenCount)
    {
        long limit = tokenCount + AddedTokens.Count;
        foreach (var (id, (content, _)) in AddedTokens)
            if (id >= limit)
                throw new CheckpointFormatException(
                    $"{SourcePath}: added token '{content}' has id {id}, outside the {limit} ids the tokenizer's {tokenCount} tokens and {AddedTokens.Count} added tokens can have.");
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
