using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

public class TokenizerLoaderTests
{
    [Fact]
    public void A_folder_without_tokenizer_files_names_the_folder_and_the_files()
    {
        using var dir = TestPaths.NewTempDir();
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains(dir.Path, ex.Message);
        Assert.Contains("tokenizer.json", ex.Message);
        Assert.Contains("tokenizer.model", ex.Message);
    }

    [Theory]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}""", "byte 0x00")]
    [InlineData("""{"model": {"type": "BPE", "vocab": "oops"}, "pre_tokenizer": {"type": "ByteLevel"}}""", "model.vocab")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {}}}""", "WordPiece")]
    public void Malformed_tokenizer_json_names_the_file(string content, string expectedFragment)
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.Combine("tokenizer.json"), content);
        var ex = Assert.ThrowsAny<ReplaceMeException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains(dir.Combine("tokenizer.json"), ex.Message);
        Assert.Contains(expectedFragment, ex.Message);
    }

    [Fact]
    public void A_merge_outside_the_vocabulary_is_reported_with_its_index()
    {
        using var dir = TestPaths.NewTempDir();
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteLevelBpeTokenizerTests.ByteChar(b)] = b;
        var json = new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("a b") },
        };
        File.WriteAllText(dir.Combine("tokenizer.json"), json.ToJsonString());
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("merge 0", ex.Message);
    }

    [Fact]
    public void A_garbage_tokenizer_model_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.Combine("tokenizer.model"), [0xFF, 0x01, 0x02, 0x03, 0x04, 0x05]);
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains(dir.Combine("tokenizer.model"), ex.Message);
    }

    [Fact]
    public void A_malformed_tokenizer_config_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"add_bos_token": "yes"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("tokenizer_config.json", ex.Message);
        Assert.Contains("add_bos_token", ex.Message);
    }

    [Fact]
    public void A_sentencepiece_style_tokenizer_json_defers_to_tokenizer_model()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(Stories15MTestModel.Files.TokenizerModel, dir.Combine("tokenizer.model"));
        File.WriteAllText(dir.Combine("tokenizer.json"), """{"model": {"type": "BPE", "vocab": {}, "merges": [], "byte_fallback": true}, "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]}}""");
        Assert.Equal([1, 9038, 2501, 263, 931], TokenizerLoader.Load(dir.Path).Encode("Once upon a time"));
    }
}
