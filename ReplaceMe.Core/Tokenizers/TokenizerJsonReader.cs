using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>Reads a Hugging Face <c>tokenizer.json</c> holding a byte-level BPE model into a <see cref="ByteLevelBpeTokenizer"/>.</summary>
internal static class TokenizerJsonReader
{
    /// <summary>The file name of the fast-tokenizer file.</summary>
    public const string FileName = "tokenizer.json";

    /// <summary>True when the file's pre-tokenizer or decoder is ByteLevel (GPT-2 style) rather than SentencePiece-style (Metaspace, byte fallback).</summary>
    /// <exception cref="CheckpointFormatException">The file is not valid JSON.</exception>
    public static bool IsByteLevel(string path)
    {
        using var doc = Parse(path);
        return IsByteLevel(doc.RootElement);
    }

    /// <summary>Loads the tokenizer; <paramref name="config"/> supplies BOS/EOS names and flags.</summary>
    /// <exception cref="CheckpointFormatException">Malformed file: the message names it and the key.</exception>
    /// <exception cref="UnsupportedModelException">A component this reader does not implement.</exception>
    public static ByteLevelBpeTokenizer Load(string path, TokenizerConfigJson config) => Load(path, config, PreTokenSplit.DefaultMatchTimeout);

    /// <summary><see cref="Load(string, TokenizerConfigJson)"/> with the regex match time limit given (tests use a short one).</summary>
    internal static ByteLevelBpeTokenizer Load(string path, TokenizerConfigJson config, TimeSpan matchTimeout)
    {
        using var doc = Parse(path);
        var root = doc.RootElement;
        try
        {
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{path}: missing the 'model' object.");
            var type = model.TryGetProperty("type", out var t) ? t.GetString() : "BPE";
            if (type != "BPE") throw new UnsupportedModelException($"{path}: model type '{type}' is not supported (only byte-level BPE).");
            if (!IsByteLevel(root))
                throw new UnsupportedModelException($"{path}: not a byte-level BPE tokenizer (no ByteLevel pre-tokenizer or decoder); SentencePiece-style models load from tokenizer.model.");
            foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
                if (model.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0)
                    throw new UnsupportedModelException($"{path}: model.{key} is not supported for byte-level BPE.");
            if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
                throw new UnsupportedModelException($"{path}: BPE dropout is a training-time option and is not supported.");

            var vocab = ReadVocab(model, path);
            var merges = ReadMerges(model, path);
            var added = ReadAddedTokens(root, path, vocab.Count);
            config.CheckAddedTokenIds((long)vocab.Count + added.Count);
            var splits = new List<PreTokenSplit>();
            bool addPrefixSpace = false;
            if (root.TryGetProperty("pre_tokenizer", out var pre)) ReadPreTokenizer(pre, path, splits, ref addPrefixSpace, matchTimeout);

            int? Lookup(string? token) =>
                token is null ? null : added.FirstOrDefault(a => a.Content == token)?.Id ?? (vocab.TryGetValue(token, out var id) ? id : null);
            var (prefix, suffix) = root.TryGetProperty("post_processor", out var post) ? ReadTemplate(post, path, Lookup) : ([], []);
            foreach (var id in prefix.Concat(suffix))
                if (!vocab.ContainsValue(id) && !added.Any(a => a.Id == id))
                    throw new CheckpointFormatException($"{path}: post_processor adds id {id}, which is neither a vocabulary token nor an added token.");
            int? bos = Lookup(config.BosToken) ?? (prefix.Count > 0 ? prefix[0] : null);
            int? eos = Lookup(config.EosToken) ?? (suffix.Count > 0 ? suffix[^1] : null);
            // An explicit flag in tokenizer_config.json decides, as Hugging Face's Llama fast tokenizer does.
            if (config.AddBosToken is { } addBos) prefix = addBos && bos is { } b ? [b] : [];
            if (config.AddEosToken is { } addEos) suffix = addEos && eos is { } e ? [e] : [];
            return new ByteLevelBpeTokenizer(new ByteLevelBpeDefinition
            {
                SourcePath = path,
                Vocab = vocab,
                Merges = merges,
                AddedTokens = added,
                Normalize = root.TryGetProperty("normalizer", out var norm) ? ReadNormalizer(norm, path) : null,
                Splits = splits,
                AddPrefixSpace = addPrefixSpace,
                IgnoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True,
                PrefixIds = prefix,
                SuffixIds = suffix,
                BosId = bos,
                EosId = eos,
                PadId = Lookup(config.PadToken),
                MatchTimeout = matchTimeout,
            });
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"{path}: malformed tokenizer ({ex.Message})", ex);
        }
    }

    private static JsonDocument Parse(string path)
    {
        try
        {
            return InputFile.ParseJson(path, InputFile.TokenizerJsonMaxBytes, "Tokenizer");
        }
        catch (CheckpointFormatException ex) when (ex.InnerException is JsonException json)
        {
            throw new CheckpointFormatException($"{path}: not valid JSON ({json.Message})", json);
        }
    }

    private static bool IsByteLevel(JsonElement root) =>
        HasType(root, "pre_tokenizer", "pretokenizers", "ByteLevel") || HasType(root, "decoder", "decoders", "ByteLevel");

    private static bool HasType(JsonElement root, string key, string listKey, string type)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind != JsonValueKind.Object) return false;
        if (e.TryGetProperty("type", out var t) && t.GetString() == type) return true;
        return e.TryGetProperty(listKey, out var list) && list.ValueKind == JsonValueKind.Array
            && list.EnumerateArray().Any(x => x.TryGetProperty("type", out var xt) && xt.GetString() == type);
    }

    private static Dictionary<string, int> ReadVocab(JsonElement model, string path)
    {
        if (!model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException($"{path}: model.vocab must be an object of token → id.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id) || id < 0 || id == int.MaxValue)
                throw new CheckpointFormatException($"{path}: model.vocab['{p.Name}'] is not a non-negative integer id below {int.MaxValue}.");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    // Merges come as "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20).
    private static List<(string, string)> ReadMerges(JsonElement model, string path)
    {
        var merges = new List<(string, string)>();
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind == JsonValueKind.Null) return merges;
        if (m.ValueKind != JsonValueKind.Array) throw new CheckpointFormatException($"{path}: model.merges must be an array.");
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                var parts = e.GetString()!.Split(' ');
                if (parts.Length != 2) throw new CheckpointFormatException($"{path}: merge {i} \"{e.GetString()}\" is not two tokens separated by one space.");
                merges.Add((parts[0], parts[1]));
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
            {
                merges.Add((e[0].GetString()!, e[1].GetString()!));
            }
            else
            {
                throw new CheckpointFormatException($"{path}: merge {i} must be \"a b\" or [\"a\", \"b\"].");
            }
            i++;
        }
        return merges;
    }

    // Ids must lie in [0, vocab + added): Hugging Face numbers an added token that is not in the vocabulary after the
    // vocabulary and the added tokens before it, so no larger id can come from a consistent file.
    private static List<AddedToken> ReadAddedTokens(JsonElement root, string path, int vocabCount)
    {
        var list = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var a) || a.ValueKind != JsonValueKind.Array) return list;
        long limit = (long)vocabCount + a.GetArrayLength();
        var ids = new HashSet<int>();
        foreach (var e in a.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("id", out var id) || !e.TryGetProperty("content", out var content)
                || content.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException($"{path}: every added_tokens entry needs an integer 'id' and a string 'content'.");
            var text = content.GetString()!;
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt64(out var value))
                throw new CheckpointFormatException($"{path}: added token '{text}' has id {id.GetRawText()}, not an integer.");
            if (value < 0 || value >= limit)
                throw new CheckpointFormatException(
                    $"{path}: added token '{text}' has id {value}, outside 0..{limit - 1} (the {vocabCount} vocabulary tokens and {a.GetArrayLength()} added tokens).");
            if (!ids.Add((int)value))
                throw new CheckpointFormatException($"{path}: added token id {value} ('{text}') is given twice.");
            bool Flag(string k) => e.TryGetProperty(k, out var f) && f.ValueKind == JsonValueKind.True;
            list.Add(new AddedToken((int)value, text, Flag("special"), Flag("lstrip"), Flag("rstrip"), Flag("single_word")));
        }
        return list;
    }

    private static void ReadPreTokenizer(JsonElement e, string path, List<PreTokenSplit> splits, ref bool addPrefixSpace, TimeSpan timeout)
    {
        if (e.ValueKind == JsonValueKind.Null) return;
        var type = e.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var child in e.GetProperty("pretokenizers").EnumerateArray()) ReadPreTokenizer(child, path, splits, ref addPrefixSpace, timeout);
                break;
            case "ByteLevel":
                addPrefixSpace |= e.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;
                bool useRegex = !e.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False;
                if (useRegex) splits.Add(new PreTokenSplit(PreTokenSplit.Gpt2Pattern, removeMatches: false, path, timeout));
                break;
            case "Split":
                if (e.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True)
                    throw new UnsupportedModelException($"{path}: an inverted Split pre-tokenizer is not supported.");
                var behavior = e.GetProperty("behavior").GetString();
                if (behavior is not ("Isolated" or "Removed"))
                    throw new UnsupportedModelException($"{path}: Split behavior '{behavior}' is not supported (Isolated, Removed).");
                var pattern = e.GetProperty("pattern");
                string regex = pattern.TryGetProperty("Regex", out var r) ? r.GetString()!
                    : Regex.Escape(pattern.GetProperty("String").GetString()!);
                splits.Add(new PreTokenSplit(regex, behavior == "Removed", path, timeout));
                break;
            case "Digits":
                bool individual = e.TryGetProperty("individual_digits", out var ind) && ind.ValueKind == JsonValueKind.True;
                splits.Add(new PreTokenSplit(individual ? @"\p{N}" : @"\p{N}+", removeMatches: false, path, timeout));
                break;
            default:
                throw new UnsupportedModelException($"{path}: pre-tokenizer '{type}' is not supported for byte-level BPE.");
        }
    }

    private static Func<string, string>? ReadNormalizer(JsonElement e, string path)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        var type = e.GetProperty("type").GetString();
        return type switch
        {
            "NFC" => s => s.Normalize(NormalizationForm.FormC),
            "NFD" => s => s.Normalize(NormalizationForm.FormD),
            "NFKC" => s => s.Normalize(NormalizationForm.FormKC),
            "NFKD" => s => s.Normalize(NormalizationForm.FormKD),
            "Lowercase" => s => s.ToLowerInvariant(),
            "Sequence" => e.GetProperty("normalizers").EnumerateArray().Select(n => ReadNormalizer(n, path))
                .Where(f => f is not null).Aggregate((Func<string, string>)(s => s), (acc, f) => s => f!(acc(s))),
            _ => throw new UnsupportedModelException($"{path}: normalizer '{type}' is not supported for byte-level BPE."),
        };
    }

    // TemplateProcessing "single": special tokens before the "A" sequence are the prefix (BOS), after it the suffix.
    private static (IReadOnlyList<int> Prefix, IReadOnlyList<int> Suffix) ReadTemplate(JsonElement e, string path, Func<string?, int?> lookup)
    {
        if (e.ValueKind == JsonValueKind.Null) return ([], []);
        var type = e.GetProperty("type").GetString();
        switch (type)
        {
            case "ByteLevel":
                return ([], []);
            case "Sequence":
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var child in e.GetProperty("processors").EnumerateArray())
                {
                    var (p, s) = ReadTemplate(child, path, lookup);
                    prefix.AddRange(p);
                    suffix.AddRange(s);
                }
                return (prefix, suffix);
            case "TemplateProcessing":
                var before = new List<int>();
                var after = new List<int>();
                bool seenSequence = false;
                foreach (var item in e.GetProperty("single").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    var name = item.GetProperty("SpecialToken").GetProperty("id").GetString();
                    IEnumerable<int> ids = e.TryGetProperty("special_tokens", out var st) && st.TryGetProperty(name!, out var def)
                        ? def.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())
                        : [lookup(name) ?? throw new CheckpointFormatException($"{path}: post_processor token '{name}' is not in the vocabulary.")];
                    (seenSequence ? after : before).AddRange(ids);
                }
                return (before, after);
            default:
                throw new UnsupportedModelException($"{path}: post-processor '{type}' is not supported.");
        }
    }
}
