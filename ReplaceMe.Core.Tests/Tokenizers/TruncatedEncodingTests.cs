using System.Text;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Tests.Calibration;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

/// <summary>
/// Long documents are tokenized only as far as the kept ids need, and the ids are exactly those of tokenizing the
/// whole text and truncating, for SentencePiece (stories15M's Llama-2 model) and byte-level BPE (GPT-2), on real text
/// (this repository's README and docs) and on texts built to stress the cut (one endless word, whitespace runs,
/// surrogate pairs, digits, CJK).
/// </summary>
public class TruncatedEncodingTests
{
    private static readonly Lazy<ITextTokenizer> SentencePiece = new(() => TokenizerLoader.Load(Stories15MTestModel.FilesDir));

    private static readonly Lazy<ITextTokenizer> Gpt2 = new(() =>
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllText(dir.Combine("tokenizer.json"), ByteLevelBpeTokenizerTests.Gpt2TokenizerJson().ToJsonString());
            File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": true, "add_eos_token": true}""");
            return TokenizerLoader.Load(dir.Path);
        }
        finally { dir.Dispose(); }
    });

    /// <summary>The repository's README and docs, about 200 000 characters of prose, tables, code and symbols.</summary>
    private static readonly Lazy<string> RealText = new(() =>
    {
        var sb = new StringBuilder(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md")));
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal))
            sb.Append("\n\n").Append(File.ReadAllText(f));
        var text = sb.ToString();
        while (text.Length < 250_000) text += "\n\n" + text; // the docs alone may be shorter on a trimmed checkout
        return text;
    });

    private static ITextTokenizer Tokenizer(string name) => name == "sentencepiece" ? SentencePiece.Value : Gpt2.Value;

    private static void AssertSameAsWhole(ITextTokenizer tok, string text, int maxLength, bool special)
    {
        var whole = tok.Encode(text, special);
        var expected = whole.Take(maxLength).ToArray();
        var actual = tok.EncodeTruncated(text, maxLength, special);
        Assert.True(expected.SequenceEqual(actual),
            $"{text.Length} chars, maxLength {maxLength}, special {special}: first difference at {expected.Zip(actual).TakeWhile(p => p.First == p.Second).Count()}");
    }

    [Theory]
    [InlineData("sentencepiece")]
    [InlineData("gpt2")]
    public void Real_text_gives_the_ids_of_tokenizing_whole_then_truncating(string name)
    {
        var tok = Tokenizer(name);
        var text = RealText.Value;
        foreach (var (start, length) in new[] { (0, 20_000), (1_237, 70_000), (50_001, 150_000), (99_999, 33_333) })
        {
            var doc = text.Substring(start, length);
            var whole = tok.Encode(doc);
            foreach (var maxLength in new[] { 1, 7, 64, 300, 2048 })
            {
                var truncated = tok.EncodeTruncated(doc, maxLength);
                Assert.True(whole.Take(maxLength).SequenceEqual(truncated), $"{name}: {start}+{length}, maxLength {maxLength}");
            }
        }
    }

    public static TheoryData<string, string> Stress => new()
    {
        { "sentencepiece", "one word" }, { "gpt2", "one word" },
        { "sentencepiece", "spaces" }, { "gpt2", "spaces" },
        { "sentencepiece", "emoji" }, { "gpt2", "emoji" },
        { "sentencepiece", "digits" }, { "gpt2", "digits" },
        { "sentencepiece", "cjk" }, { "gpt2", "cjk" },
        { "sentencepiece", "newlines" }, { "gpt2", "newlines" },
        { "sentencepiece", "runs between words" }, { "gpt2", "runs between words" },
        { "sentencepiece", "punctuation" }, { "gpt2", "punctuation" },
    };

    [Theory]
    [MemberData(nameof(Stress))]
    public void Texts_that_stress_the_cut_give_the_same_ids(string name, string kind)
    {
        string text = kind switch
        {
            "one word" => new string('a', 60_001),
            "spaces" => new string(' ', 40_000) + "and then some words " + new string('\t', 30_000),
            "emoji" => string.Concat(Enumerable.Repeat("😀🚀", 20_000)),
            "digits" => string.Concat(Enumerable.Repeat("1234567890", 2_000)),
            "cjk" => string.Concat(Enumerable.Repeat("日本語のテキストと中文", 6_000)),
            "runs between words" => string.Concat(Enumerable.Repeat("x" + new string('a', 4_001) + new string(' ', 3_001) + "bb ", 6)),
            "punctuation" => string.Concat(Enumerable.Repeat("Wait!!!\n\n  ... (yes) -- \"no\"?\r\n\t", 2_500)),
            _ => string.Concat(Enumerable.Repeat("line\n\n\r\n  \n", 9_000)),
        };
        var tok = Tokenizer(name);
        foreach (var maxLength in new[] { 3, 64, 500 })
            foreach (var special in new[] { true, false })
                AssertSameAsWhole(tok, text, maxLength, special);
    }

    /// <summary>Counts the characters it is asked to encode.</summary>
    private sealed class CountingTokenizer(ITextTokenizer inner) : ITextTokenizer
    {
        public long CharactersEncoded { get; private set; }
        public int VocabSize => inner.VocabSize;
        public int? BosId => inner.BosId;
        public int? EosId => inner.EosId;
        public int PadId => inner.PadId;
        public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
        {
            CharactersEncoded += text.Length;
            return inner.Encode(text, addSpecialTokens);
        }
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => inner.Decode(ids, skipSpecialTokens);
    }

    [Fact]
    public void A_huge_calibration_document_is_tokenized_only_as_far_as_max_length_needs()
    {
        var huge = string.Concat(Enumerable.Repeat("Once upon a time there was a tiny robot. ", 125_000)); // 5 million characters
        var counting = new CountingTokenizer(new CharTokenizer());
        using var batches = CalibrationBatches.Tokenize([huge, "short"], counting, batchSize: 2, maxLength: 64);
        Assert.True(counting.CharactersEncoded < 100_000, $"{counting.CharactersEncoded:N0} characters were tokenized to keep 64 tokens.");
        var expected = new CharTokenizer().Encode(huge).Take(64).Select(i => (long)i).ToArray();
        Assert.Equal(expected, batches[0].InputIds[0].data<long>().ToArray());
        Assert.Equal([64, 6], batches[0].Lengths);

        var counting2 = new CountingTokenizer(new CharTokenizer());
        using var batch = counting2.EncodeBatch([huge], maxLength: 16);
        Assert.True(counting2.CharactersEncoded < 100_000, $"{counting2.CharactersEncoded:N0} characters were tokenized by EncodeBatch.");
        Assert.Equal(expected.Take(16), batch.InputIds[0].data<long>().ToArray());
    }
}
