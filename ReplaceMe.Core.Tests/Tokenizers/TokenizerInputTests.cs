using System.Text.Json.Nodes;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

/// <summary>Added-token ids outside the range a tokenizer can give, and tokenizer.json regexes that cannot be run.</summary>
public class TokenizerInputTests
{
    private static string Write(TempDir dir, JsonObject tokenizerJson, string? config = null)
    {
        File.WriteAllText(dir.Combine("tokenizer.json"), tokenizerJson.ToJsonString());
        if (config is not null) File.WriteAllText(dir.Combine("tokenizer_config.json"), config);
        return dir.Path;
    }

    /// <summary>The hand-made tokenizer has 261 vocabulary tokens and 2 added tokens: ids 0..262 are possible.</summary>
    [Theory]
    [InlineData(-1)]
    [InlineData(263)]
    [InlineData(int.MaxValue)]
    public void An_added_token_id_outside_the_vocabulary_and_added_tokens_is_refused_in_tokenizer_json(int id)
    {
        using var dir = TestPaths.NewTempDir();
        var json = ByteLevelBpeTokenizerTests.HandMade(pairForm: true);
        json["added_tokens"]![0]!["id"] = id;
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(Write(dir, json)));
        Assert.Contains("tokenizer.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'<|end|>'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"id {id}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_last_possible_added_token_id_is_accepted()
    {
        using var dir = TestPaths.NewTempDir();
        var json = ByteLevelBpeTokenizerTests.HandMade(pairForm: true);
        json["added_tokens"]![0]!["id"] = 261;
        json["added_tokens"]![1]!["id"] = 262; // the template's <|bos|>
        var tok = TokenizerLoader.Load(Write(dir, json));
        Assert.Equal(263, tok.VocabSize);
        Assert.Equal([262, 261], tok.Encode("<|end|>"));
    }

    [Theory]
    [InlineData("-5", "id -5")]
    [InlineData("32002", "id 32002")]
    public void An_added_tokens_decoder_id_out_of_range_is_refused_for_sentencepiece(string id, string fragment)
    {
        // stories15M's tokenizer.model has 32 000 pieces; with two added tokens, ids 0..32001 are possible.
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer_config.json"),
            """{"added_tokens_decoder": {"32000": {"content": "<pad>", "special": true}, "ID": {"content": "<odd>", "special": true}}}""".Replace("ID", id, StringComparison.Ordinal));
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("tokenizer_config.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'<odd>'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_special_token_past_the_pieces_counts_in_the_vocabulary_size()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"added_tokens_decoder": {"32000": {"content": "<pad>", "special": true}}}""");
        var tok = TokenizerLoader.Load(dir.Path);
        Assert.Equal(32001, tok.VocabSize);
        Assert.Contains(32000, tok.Encode("Once<pad>"));
    }

    [Fact]
    public void An_added_tokens_decoder_id_out_of_range_is_refused_beside_tokenizer_json()
    {
        using var dir = TestPaths.NewTempDir();
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(Write(dir, ByteLevelBpeTokenizerTests.HandMade(pairForm: false),
            """{"added_tokens_decoder": {"99999": {"content": "<far>", "special": true}}}""")));
        Assert.Contains("tokenizer_config.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'<far>' has id 99999", ex.Message, StringComparison.Ordinal);
    }

    private static JsonObject WithSplit(string pattern)
    {
        var json = ByteLevelBpeTokenizerTests.HandMade(pairForm: true);
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        };
        return json;
    }

    [Fact]
    public void A_catastrophic_pre_tokenizer_regex_is_a_typed_error_naming_the_file_and_the_pattern()
    {
        using var dir = TestPaths.NewTempDir();
        const string pattern = "(x+x+)+y";
        Write(dir, WithSplit(pattern));
        var tok = TokenizerJsonReader.Load(dir.Combine("tokenizer.json"), new TokenizerConfigJson(), TimeSpan.FromMilliseconds(20));
        Assert.Equal([262, 260, 'o'], tok.Encode("hello")); // an ordinary text is fine: he+ll → hell (260), o
        var ex = Assert.Throws<CheckpointFormatException>(() => tok.Encode(new string('x', 40)));
        Assert.Contains("tokenizer.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(pattern, ex.Message, StringComparison.Ordinal);
        Assert.IsType<System.Text.RegularExpressions.RegexMatchTimeoutException>(ex.InnerException);
    }

    [Fact]
    public void A_pre_tokenizer_regex_that_does_not_compile_is_refused_at_load()
    {
        using var dir = TestPaths.NewTempDir();
        var ex = Assert.Throws<UnsupportedModelException>(() => TokenizerLoader.Load(Write(dir, WithSplit("(unclosed"))));
        Assert.Contains("tokenizer.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'(unclosed'", ex.Message, StringComparison.Ordinal);
    }
}
