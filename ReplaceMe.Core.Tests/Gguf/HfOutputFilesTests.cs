using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary>The Hugging Face files an import writes, in the form transformers itself writes for a Llama model.</summary>
public class HfOutputFilesTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Import_writes_transformers_style_tokenizer_and_generation_files()
    {
        var dir = Fixture.ModelDir;
        // Token texts are literal (transformers: json.dumps(ensure_ascii=False)), not \u003C-escaped.
        var tokenizerConfig = File.ReadAllText(Path.Combine(dir, "tokenizer_config.json"));
        Assert.Contains("\"bos_token\": \"<s>\"", tokenizerConfig);
        Assert.DoesNotContain("\\u003C", tokenizerConfig);
        var map = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "special_tokens_map.json")))!;
        Assert.Equal("<s>", (string?)map["bos_token"]!["content"]);
        Assert.Equal("</s>", (string?)map["eos_token"]!["content"]);
        Assert.Equal("<unk>", (string?)map["unk_token"]!["content"]);
        var generation = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "generation_config.json")))!;
        Assert.True((bool)generation["_from_model_config"]!);
        Assert.Equal(1, (int)generation["bos_token_id"]!);
        Assert.Equal(2, (int)generation["eos_token_id"]!);
        // config.json keeps torch_dtype true to the stored weights (float32 safetensors).
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal("float32", (string?)config["torch_dtype"]);
        Assert.Equal("LlamaForCausalLM", (string?)config["architectures"]![0]);
    }
}
