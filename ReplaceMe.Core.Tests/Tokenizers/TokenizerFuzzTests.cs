using System.Text;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

/// <summary>
/// Seeded mutation fuzzing of tokenizer.json (structure and text mutations of a small byte-level BPE file) and of
/// tokenizer.model (byte mutations of a cut-down SentencePiece protobuf): each case loads and then encodes and decodes
/// a few texts, or raises one of the library's typed exceptions (never NullReference, IndexOutOfRange, OutOfMemory,
/// ArgumentOutOfRange, InvalidCast …). The seed and case are printed on failure.
/// </summary>
public class TokenizerFuzzTests
{
    private const int Seed = 20261131;
    private static readonly string[] Texts = ["Once upon a time", " héllo  wörld 123 😀\n\t", "<|end|><|bos|>hell", "", "aaaaaaaaaaaa"];

    private static readonly JsonNode?[] Values =
    [
        null, true, false, 0, -1, 1, 255, 256, 261, 262, 263, 70000, int.MaxValue, -2147483648, 1e300, 0.5,
        "", "BPE", "WordPiece", "ByteLevel", "Split", "Sequence", "Digits", "Metaspace", "NFC", "Lowercase", "Isolated", "Removed",
        "<|end|>", "Ġ", "h e", "(", "\\p{L}+", "a b c", new JsonArray(), new JsonArray("h", "e"), new JsonArray(1, 2), new JsonObject(),
        new JsonObject { ["type"] = "ByteLevel" }, new JsonObject { ["Regex"] = "\\s+" }, new JsonObject { ["String"] = " " },
        new JsonObject { ["id"] = 5, ["content"] = "x" }, new JsonObject { ["type"] = "TemplateProcessing", ["single"] = new JsonArray() },
    ];

    private static void Exercise(ITextTokenizer tok)
    {
        foreach (var text in Texts)
        {
            var ids = tok.Encode(text);
            _ = tok.Decode(ids);
            _ = tok.Decode(ids, skipSpecialTokens: false);
        }
        _ = (tok.VocabSize, tok.BosId, tok.EosId, tok.PadId);
    }

    /// <summary>A random object or array inside <paramref name="root"/> (or the root itself).</summary>
    private static JsonNode PickContainer(JsonNode root, Random rng)
    {
        var node = root;
        for (int depth = rng.Next(5); depth > 0; depth--)
        {
            var children = node switch
            {
                JsonObject o => o.Select(kv => kv.Value).Where(v => v is JsonObject or JsonArray).ToList(),
                JsonArray a => a.Where(v => v is JsonObject or JsonArray).ToList(),
                _ => [],
            };
            if (children.Count == 0) break;
            node = children[rng.Next(children.Count)]!;
        }
        return node;
    }

    private static string MutateJson(JsonObject original, Random rng)
    {
        var root = original.DeepClone().AsObject();
        int mutations = 1 + rng.Next(3);
        for (int m = 0; m < mutations; m++)
        {
            var container = PickContainer(root, rng);
            var value = Values[rng.Next(Values.Length)]?.DeepClone();
            if (container is JsonObject o && o.Count > 0)
            {
                var key = o.ElementAt(rng.Next(o.Count)).Key;
                switch (rng.Next(3))
                {
                    case 0: o.Remove(key); break;
                    case 1: o[key] = value; break;
                    default: o["k" + rng.Next(3)] = value; break;
                }
            }
            else if (container is JsonArray a && a.Count > 0)
            {
                int i = rng.Next(a.Count);
                if (rng.Next(2) == 0) a.RemoveAt(i); else a[i] = value;
            }
        }
        var text = root.ToJsonString();
        switch (rng.Next(8))
        {
            case 0: return text[..rng.Next(text.Length)];                                  // truncated
            case 1:                                                                            // a character replaced
                var chars = text.ToCharArray();
                const string significant = "{}[]\",:\\0-e\u00e9";
                chars[rng.Next(chars.Length)] = significant[rng.Next(significant.Length)];
                return new string(chars);
            default: return text;
        }
    }

    [Fact]
    public void Mutated_tokenizer_json_loads_and_encodes_or_raises_only_the_librarys_exceptions()
    {
        const int iterations = 2500;
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("tokenizer.json");
        var bases = new[] { ByteLevelBpeTokenizerTests.HandMade(pairForm: true), ByteLevelBpeTokenizerTests.HandMade(pairForm: false) };
        bases[1]["pre_tokenizer"] = JsonNode.Parse("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
              {"type": "Digits", "individual_digits": true},
              {"type": "ByteLevel", "add_prefix_space": true, "use_regex": false}]}
            """);
        bases[1]["normalizer"] = JsonNode.Parse("""{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]}""");
        var rng = new Random(Seed);
        var failures = new List<string>();
        int loaded = 0, refused = 0;
        for (int i = 0; i < iterations; i++)
        {
            var json = MutateJson(bases[i % bases.Length], rng);
            File.WriteAllText(path, json);
            try
            {
                Exercise(TokenizerJsonReader.Load(path, new TokenizerConfigJson(), TimeSpan.FromSeconds(1)));
                loaded++;
            }
            catch (ReplaceMeException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                failures.Add($"seed {Seed}, case {i}: {ex.GetType().Name}: {ex.Message}\n  {json[..Math.Min(json.Length, 400)]}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {iterations} tokenizer.json files escaped with other exceptions:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(loaded > 100 && refused > 100, $"The mutations should exercise both outcomes: {loaded} loaded, {refused} refused.");
    }

    /// <summary>
    /// stories15M's tokenizer.model cut to its first <paramref name="pieces"/> pieces (field 1 of ModelProto), every
    /// other top-level field kept: a valid SentencePiece model small enough to parse thousands of times.
    /// </summary>
    internal static byte[] SmallSentencePieceModel(int pieces)
    {
        var bytes = File.ReadAllBytes(Stories15MTestModel.Files.TokenizerModel);
        using var output = new MemoryStream();
        int pos = 0, kept = 0;
        while (pos < bytes.Length)
        {
            int start = pos;
            ulong key = ReadVarint(bytes, ref pos);
            int wire = (int)(key & 7);
            switch (wire)
            {
                case 0: ReadVarint(bytes, ref pos); break;
                case 1: pos += 8; break;
                case 2: int length = (int)ReadVarint(bytes, ref pos); pos += length; break;
                case 5: pos += 4; break;
                default: throw new InvalidDataException($"wire type {wire} at {start}");
            }
            if ((key >> 3) == 1 && kept++ >= pieces) continue;
            output.Write(bytes, start, pos - start);
        }
        return output.ToArray();
    }

    private static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[pos++];
            value |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return value;
        }
    }

    [Fact]
    public void The_cut_down_sentencepiece_model_is_a_working_tokenizer()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.Combine("tokenizer.model"), SmallSentencePieceModel(600));
        var tok = TokenizerLoader.Load(dir.Path);
        Assert.Equal(600, tok.VocabSize);
        var ids = tok.Encode("Once upon a time");
        Assert.Equal(1, ids[0]);
        Assert.All(ids, id => Assert.InRange(id, 0, 599));
        Assert.Equal("Once upon a time", tok.Decode(ids));
    }

    [Fact]
    public void Mutated_tokenizer_model_loads_and_encodes_or_raises_only_the_librarys_exceptions()
    {
        const int iterations = 2500;
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("tokenizer.model");
        var original = SmallSentencePieceModel(600);
        var rng = new Random(Seed + 1);
        var failures = new List<string>();
        int loaded = 0, refused = 0;
        for (int i = 0; i < iterations; i++)
        {
            var bytes = (byte[])original.Clone();
            switch (rng.Next(5))
            {
                case 0: bytes = bytes[..rng.Next(bytes.Length)]; break;                    // truncated
                case 1: bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256); break;         // one byte
                case 2: for (int k = 0; k < 8; k++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8)); break; // bit flips
                case 3:                                                                      // a run of 0xFF (huge varints)
                    int at = rng.Next(bytes.Length - 10);
                    for (int k = 0; k < 1 + rng.Next(10); k++) bytes[at + k] = 0xFF;
                    break;
                default:                                                                     // bytes inserted
                    int ins = rng.Next(bytes.Length);
                    var extra = new byte[1 + rng.Next(6)];
                    rng.NextBytes(extra);
                    bytes = [.. bytes[..ins], .. extra, .. bytes[ins..]];
                    break;
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                Exercise(SentencePieceTextTokenizer.Load(path, new TokenizerConfigJson()));
                loaded++;
            }
            catch (ReplaceMeException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                failures.Add($"seed {Seed + 1}, case {i}: {ex.GetType().Name}: {ex.Message}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {iterations} tokenizer.model files escaped with other exceptions:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(loaded > 100 && refused > 100, $"The mutations should exercise both outcomes: {loaded} loaded, {refused} refused.");
    }
}
