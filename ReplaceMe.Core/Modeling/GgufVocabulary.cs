using System.Text.Json;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// The tokenizer of a Hugging Face folder as llama.cpp's GGUF tokenizer keys: a SentencePiece <c>tokenizer.model</c>
/// becomes <c>tokenizer.ggml.model = llama</c> with tokens, scores and token types; a byte-level BPE
/// <c>tokenizer.json</c> becomes <c>gpt2</c> with tokens, token types, merges and the pre-tokenizer's name. Both get
/// the special token ids and the add-BOS/EOS flags the library's own tokenizer applies, and the chat template.
/// </summary>
internal static class GgufVocabulary
{
    // llama.cpp token types (llama_token_type), which equal SentencePiece's piece types.
    internal const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>Split regexes of tokenizer.json pre-tokenizers and the llama.cpp pre-tokenizer names that implement them.</summary>
    private static readonly Dictionary<string, string> KnownSplitPatterns = new(StringComparer.Ordinal)
    {
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "llama-bpe",
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "qwen2",
    };

    /// <summary>Adds the tokenizer keys for the tokenizer in <paramref name="modelDir"/>.</summary>
    /// <param name="metadata">Receives the keys.</param>
    /// <param name="modelDir">The folder holding the tokenizer files.</param>
    /// <param name="vocabSize">The model's vocabulary size (embedding rows); the token list is padded to it with unused <c>[PAD&lt;id&gt;]</c> tokens.</param>
    /// <exception cref="CheckpointFormatException">No tokenizer, or a malformed one, or more tokens than embedding rows.</exception>
    /// <exception cref="UnsupportedModelException">A byte-level pre-tokenizer llama.cpp has no name for.</exception>
    public static void Add(GgufMetadata metadata, string modelDir, int vocabSize)
    {
        var tokenizer = TokenizerLoader.Load(modelDir);
        var jsonPath = Path.Combine(modelDir, "tokenizer.json");
        var spPath = Path.Combine(modelDir, "tokenizer.model");
        bool byteLevel = File.Exists(jsonPath) && (!File.Exists(spPath) || TokenizerJsonReader.IsByteLevel(jsonPath));
        List<string> tokens;
        List<int> types;
        if (byteLevel)
        {
            (tokens, types, var merges, var pre) = ReadByteLevel(jsonPath, vocabSize);
            metadata.AddString("tokenizer.ggml.model", "gpt2");
            metadata.AddString("tokenizer.ggml.pre", pre);
            metadata.AddStringArray("tokenizer.ggml.tokens", tokens);
            metadata.AddInt32Array("tokenizer.ggml.token_type", types);
            metadata.AddStringArray("tokenizer.ggml.merges", merges);
        }
        else
        {
            (tokens, var scores, types, bool addDummyPrefix) = ReadSentencePiece(spPath, vocabSize, TokenizerConfigJson.Read(modelDir).AddedTokens);
            metadata.AddString("tokenizer.ggml.model", "llama");
            metadata.AddString("tokenizer.ggml.pre", "default");
            metadata.AddStringArray("tokenizer.ggml.tokens", tokens);
            metadata.AddFloat32Array("tokenizer.ggml.scores", scores);
            metadata.AddInt32Array("tokenizer.ggml.token_type", types);
            metadata.AddBool("tokenizer.ggml.add_space_prefix", addDummyPrefix);
            int unk = types.IndexOf(Unknown);
            if (unk >= 0) metadata.AddUInt32("tokenizer.ggml.unknown_token_id", (uint)unk);
        }

        // Special ids and flags as the library's tokenizer applies them (tokenizer_config.json, post-processor).
        // A probe text shows whether the tokenizer adds BOS/EOS: the ids with special tokens minus those without.
        var plain = tokenizer.Encode("a", addSpecialTokens: false);
        var withSpecial = tokenizer.Encode("a", addSpecialTokens: true);
        bool addBos = tokenizer.BosId is int b && withSpecial.Count > plain.Count && withSpecial[0] == b;
        bool addEos = tokenizer.EosId is int e && withSpecial.Count > plain.Count + (addBos ? 1 : 0) && withSpecial[^1] == e;
        if (tokenizer.BosId is int bos) metadata.AddUInt32("tokenizer.ggml.bos_token_id", (uint)bos);
        if (tokenizer.EosId is int eos) metadata.AddUInt32("tokenizer.ggml.eos_token_id", (uint)eos);
        var config = TokenizerConfigJson.Read(modelDir);
        if (config.PadToken is { } pad && tokens.IndexOf(pad) is int padId and >= 0)
            metadata.AddUInt32("tokenizer.ggml.padding_token_id", (uint)padId);
        metadata.AddBool("tokenizer.ggml.add_bos_token", addBos);
        metadata.AddBool("tokenizer.ggml.add_eos_token", addEos);
        if (ReadChatTemplate(modelDir) is { } template) metadata.AddString("tokenizer.chat_template", template);
    }

    /// <summary>Pieces, scores and types of a SentencePiece model (ModelProto field 1), and its normalizer's add_dummy_prefix.</summary>
    /// <remarks>Ids past the pieces take <paramref name="addedTokens"/> (tokenizer_config.json's added_tokens_decoder:
    /// special ones are control tokens, others user-defined); any id still without a token is an unused <c>[PAD&lt;id&gt;]</c>.</remarks>
    internal static (List<string> Tokens, List<float> Scores, List<int> Types, bool AddDummyPrefix) ReadSentencePiece(
        string path, int vocabSize, IReadOnlyDictionary<int, (string Content, bool Special)>? addedTokens = null)
    {
        var tokens = new List<string>();
        var scores = new List<float>();
        var types = new List<int>();
        bool addDummyPrefix = true;
        var data = File.ReadAllBytes(path);
        try
        {
            var reader = new ProtoReader(data, 0, data.Length);
            while (reader.Next(out int field, out int wire))
            {
                if (field == 1 && wire == 2)
                {
                    var (start, end) = reader.ReadLengthDelimited();
                    var piece = new ProtoReader(data, start, end);
                    string text = "";
                    float score = 0;
                    int type = Normal;
                    while (piece.Next(out int f, out int w))
                    {
                        if (f == 1 && w == 2) { var (s, e) = piece.ReadLengthDelimited(); text = System.Text.Encoding.UTF8.GetString(data, s, e - s); }
                        else if (f == 2 && w == 5) score = piece.ReadFixed32Float();
                        else if (f == 3 && w == 0) type = (int)piece.ReadVarint();
                        else piece.Skip(w);
                    }
                    tokens.Add(text);
                    scores.Add(score);
                    types.Add(type);
                }
                else if (field == 3 && wire == 2)
                {
                    var (start, end) = reader.ReadLengthDelimited();
                    var normalizer = new ProtoReader(data, start, end);
                    while (normalizer.Next(out int f, out int w))
                    {
                        if (f == 3 && w == 0) addDummyPrefix = normalizer.ReadVarint() != 0;
                        else normalizer.Skip(w);
                    }
                }
                else
                {
                    reader.Skip(wire);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IndexOutOfRangeException or OverflowException)
        {
            throw new CheckpointFormatException($"{path}: truncated SentencePiece model.", ex);
        }
        if (tokens.Count == 0) throw new CheckpointFormatException($"{path}: the SentencePiece model has no pieces.");
        if (tokens.Count > vocabSize)
            throw new CheckpointFormatException($"{path} has {tokens.Count} pieces but the model's embedding has only {vocabSize} rows.");
        for (int i = tokens.Count; i < vocabSize; i++)
        {
            if (addedTokens is not null && addedTokens.TryGetValue(i, out var token))
            {
                tokens.Add(token.Content);
                scores.Add(0f);
                types.Add(token.Special ? Control : UserDefined);
            }
            else
            {
                tokens.Add($"[PAD{i}]");
                scores.Add(-1000f);
                types.Add(Unused);
            }
        }
        return (tokens, scores, types, addDummyPrefix);
    }

    /// <summary>Tokens by id, their types, merges as "a b", and the llama.cpp pre-tokenizer name of a byte-level tokenizer.json.</summary>
    internal static (List<string> Tokens, List<int> Types, List<string> Merges, string Pre) ReadByteLevel(string path, int vocabSize)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        try
        {
            var model = root.GetProperty("model");
            var byId = new Dictionary<int, (string Text, int Type)>();
            foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = (p.Name, Normal);
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var a in added.EnumerateArray())
                {
                    bool special = a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                    byId[a.GetProperty("id").GetInt32()] = (a.GetProperty("content").GetString() ?? "", special ? Control : UserDefined);
                }
            int count = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
            if (count > vocabSize)
                throw new CheckpointFormatException($"{path} has token id {count - 1} but the model's embedding has only {vocabSize} rows.");
            var tokens = new List<string>(vocabSize);
            var types = new List<int>(vocabSize);
            for (int i = 0; i < vocabSize; i++)
            {
                if (byId.TryGetValue(i, out var t)) { tokens.Add(t.Text); types.Add(t.Type); }
                else { tokens.Add($"[PAD{i}]"); types.Add(Unused); }
            }
            var merges = new List<string>();
            if (model.TryGetProperty("merges", out var m) && m.ValueKind == JsonValueKind.Array)
                foreach (var e in m.EnumerateArray())
                    merges.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : e[0].GetString() + " " + e[1].GetString());
            return (tokens, types, merges, PreTokenizerName(root, path));
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            throw new CheckpointFormatException($"{path}: malformed tokenizer ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// The llama.cpp pre-tokenizer that splits text as this tokenizer.json does: <c>llama-bpe</c> (Llama 3's regex),
    /// <c>qwen2</c> (Qwen2's regex, single digits), <c>smollm</c> (single digits, then GPT-2's regex) or <c>gpt-2</c>
    /// (GPT-2's regex alone).
    /// </summary>
    /// <exception cref="UnsupportedModelException">Any other pre-tokenizer: llama.cpp would split text differently.</exception>
    internal static string PreTokenizerName(JsonElement root, string path)
    {
        var parts = new List<string>();
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
        {
            var items = pre.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray().ToList() : [pre];
            foreach (var item in items)
            {
                var type = item.TryGetProperty("type", out var t) ? t.GetString() : null;
                parts.Add(type switch
                {
                    "Split" when item.TryGetProperty("pattern", out var p) && p.TryGetProperty("Regex", out var r) => "Split:" + r.GetString(),
                    "ByteLevel" => item.TryGetProperty("use_regex", out var u) && u.ValueKind == JsonValueKind.False ? "ByteLevel" : "ByteLevel+regex",
                    "Digits" => item.TryGetProperty("individual_digits", out var d) && d.ValueKind == JsonValueKind.True ? "Digits:1" : "Digits",
                    _ => type ?? "?",
                });
            }
        }
        var key = string.Join(" | ", parts);
        if (parts is ["ByteLevel+regex"]) return "gpt-2";
        if (parts is ["Digits:1", "ByteLevel+regex"]) return "smollm";
        if (parts is [var split, "ByteLevel"] && split.StartsWith("Split:", StringComparison.Ordinal)
            && KnownSplitPatterns.TryGetValue(split["Split:".Length..], out var name))
            return name;
        throw new UnsupportedModelException(
            $"{path}: the pre-tokenizer [{key}] has no llama.cpp equivalent this exporter knows (Llama 3, Qwen2, SmolLM and GPT-2 splits are); " +
            "llama.cpp would split text differently from the model, so no GGUF is written.");
    }

    private static string? ReadChatTemplate(string modelDir)
    {
        var path = Path.Combine(modelDir, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String
                ? t.GetString()
                : null;
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"{path}: not valid JSON ({ex.Message})", ex);
        }
    }

    /// <summary>A minimal protobuf wire-format reader over a byte range.</summary>
    private sealed class ProtoReader(byte[] data, int position, int end)
    {
        private int _pos = position;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= end) return false;
            ulong key = ReadVarint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = data[CheckedIndex(_pos++)];
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return result;
            }
            throw new InvalidDataException("varint longer than 10 bytes");
        }

        public (int Start, int End) ReadLengthDelimited()
        {
            int length = checked((int)ReadVarint());
            int start = _pos;
            _pos += length;
            if (length < 0 || _pos > end) throw new InvalidDataException("length-delimited field past its message");
            return (start, _pos);
        }

        public float ReadFixed32Float()
        {
            CheckedIndex(_pos + 3);
            float v = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(_pos, 4));
            _pos += 4;
            return v;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: ReadVarint(); break;
                case 1: _pos += 8; break;
                case 2: ReadLengthDelimited(); break;
                case 5: _pos += 4; break;
                default: throw new InvalidDataException($"unknown protobuf wire type {wire}");
            }
            if (_pos > end) throw new InvalidDataException("field past its message");
        }

        private int CheckedIndex(int i) => i < end ? i : throw new InvalidDataException("message ends inside a field");
    }
}
