using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

public class SentencePieceTokenizerTests
{
    private static readonly Lazy<Llama2cReferenceTokenizer> Reference =
        new(() => new Llama2cReferenceTokenizer(Stories15MTestModel.Files.TokenizerBin!));

    [Fact]
    public void Once_upon_a_time_has_the_known_llama2_ids()
    {
        var tok = TokenizerLoader.Load(Stories15MTestModel.FilesDir);
        var ids = tok.Encode("Once upon a time");
        // BOS, "▁Once", "▁upon", "▁a", "▁time": ids of the Llama-2 vocabulary.
        Assert.Equal([1, 9038, 2501, 263, 931], ids);
        Assert.Equal(Reference.Value.Encode("Once upon a time", bos: true), ids);
        Assert.Equal("Once upon a time", tok.Decode(ids));
    }

    [Theory]
    [InlineData("  Année 2024: naïve café, Zürich — 42°C 😀🚀 ñandú  ")]
    [InlineData("The quick brown fox jumps over 13 lazy dogs.\nNew line\tand tab")]
    [InlineData(" x")]
    [InlineData("日本語のテキスト and 中文")]
    public void Ids_match_the_independent_llama2c_encoder(string text)
    {
        var tok = TokenizerLoader.Load(Stories15MTestModel.FilesDir);
        var expected = Reference.Value.Encode(text, bos: true);
        Assert.Equal(expected, tok.Encode(text));
        Assert.Equal(expected.Skip(1), tok.Encode(text, addSpecialTokens: false));
    }

    [Fact]
    public void Special_tokens_of_added_tokens_decoder_match_whole_without_changing_plain_text()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer_config.json"), """
            {"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>",
             "added_tokens_decoder": {"0": {"content": "<unk>", "special": true}, "1": {"content": "<s>", "special": true}, "2": {"content": "</s>", "special": true}}}
            """);
        var tok = TokenizerLoader.Load(dir.Path);
        const string text = "  Année 2024: naïve café, Zürich — 42°C 😀🚀 ñandú  ";
        Assert.Equal(Reference.Value.Encode(text, bos: true), tok.Encode(text));
        var ids = tok.Encode("The end.</s>", addSpecialTokens: false);
        Assert.Equal(2, ids[^1]);
        Assert.Equal(Reference.Value.Encode("The end.", bos: false), ids.Take(ids.Count - 1));
    }

    [Fact]
    public void Decode_round_trips_text_with_bytes_fallback_and_drops_or_keeps_special_tokens()
    {
        var tok = TokenizerLoader.Load(Stories15MTestModel.FilesDir);
        const string text = "naïve café 😀 2024";
        var ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Contains(ids, id => id >= 3 && id < 259); // the emoji used byte fallback
        Assert.Equal(1, tok.BosId);
        Assert.Equal(2, tok.EosId);
        Assert.Equal(2, tok.PadId); // no pad token: EOS
        Assert.Equal(32000, tok.VocabSize);
        Assert.StartsWith("<s>", tok.Decode(ids, skipSpecialTokens: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([5, 32000]));
    }

    [Fact]
    public void Tokenizer_config_flags_control_bos_and_eos()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"}""");
        var tok = TokenizerLoader.Load(dir.Path);
        Assert.Equal([9038, 2501, 263, 931, 2], tok.Encode("Once upon a time"));
        Assert.Equal([9038, 2501, 263, 931], tok.Encode("Once upon a time", addSpecialTokens: false));
    }
}
