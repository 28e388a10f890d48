using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using Xunit.Abstractions;

namespace ReplaceMe.Core.Tests.Llama2c;

public class Llama2cImporterTests(ITestOutputHelper output)
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;
    private static readonly GenerationOptions Greedy40 = new() { MaxNewTokens = 40 };

    [Fact]
    public void Imported_stories15M_writes_the_readme_text_greedily()
    {
        var prompt = Fixture.Tokenizer.Encode("Once upon a time");
        var generated = new TextGenerator(Fixture.Model).Generate([prompt], Greedy40)[0];
        var text = Fixture.Tokenizer.Decode(prompt.Concat(generated));
        output.WriteLine(text);
        Assert.Equal(40, generated.Length); // no EOS within 40 tokens
        Assert.StartsWith(Stories15MTestModel.ReadmePrefix, text);
        Assert.Equal(Stories15MTestModel.Greedy40, text);
    }

    [Fact]
    public void Left_padded_batch_gives_the_unbatched_greedy_text()
    {
        string[] prompts = ["Once upon a time", "Tom had a dog named", "The sun"];
        var generator = new TextGenerator(Fixture.Model);
        var batched = generator.Generate(Fixture.Tokenizer, prompts, Greedy40);
        Assert.Equal(Stories15MTestModel.Greedy40, batched[0]);
        for (int i = 1; i < prompts.Length; i++) // row 0 alone is Greedy40 (the test above)
            Assert.Equal(generator.Generate(Fixture.Tokenizer, [prompts[i]], Greedy40)[0], batched[i]);
        // Different prompt lengths really were padded: the batch is not trivially uniform.
        Assert.NotEqual(Fixture.Tokenizer.Encode(prompts[0]).Count, Fixture.Tokenizer.Encode(prompts[2]).Count);
    }

    [Fact]
    public void Imported_folder_has_the_hugging_face_files_and_config()
    {
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(Fixture.ModelDir, f)), f);
        Assert.Equal(File.ReadAllBytes(Stories15MTestModel.Files.TokenizerModel), File.ReadAllBytes(Path.Combine(Fixture.ModelDir, "tokenizer.model")));
        var config = ModelConfigJson.Load(Path.Combine(Fixture.ModelDir, "config.json"));
        Assert.Equal(("llama", 288, 768, 6, 6, 6, 32000, 256), (config.ModelType, config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers,
            config.NumAttentionHeads, config.NumKeyValueHeads, config.VocabSize, config.MaxPositionEmbeddings));
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal(1e-5, config.RmsNormEps);
        Assert.Equal(10000.0, config.RopeTheta);
        Assert.Equal(1, config.BosTokenId);
        Assert.Equal([2], config.EosTokenIds);
        Assert.Equal("LlamaForCausalLM", config.Raw["architectures"]![0]!.GetValue<string>());
        using var reader = SafetensorsReader.Open(Fixture.ModelDir);
        Assert.Equal(2 + 6 * 9, reader.Names.Count); // embed, norm, 9 per layer; tied: no lm_head
        Assert.False(reader.Contains("lm_head.weight"));
        var tokConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture.ModelDir, "tokenizer_config.json")))!;
        Assert.True(tokConfig["add_bos_token"]!.GetValue<bool>());
        Assert.Equal([1, 9038, 2501, 263, 931], Fixture.Tokenizer.Encode("Once upon a time"));
    }

    [Fact]
    public void An_existing_output_folder_needs_overwrite()
    {
        var bin = Stories15MTestModel.Files.Weights;
        var tokModel = Stories15MTestModel.Files.TokenizerModel;
        var ex = Assert.Throws<IOException>(() => Llama2cImporter.Import(bin, tokModel, Fixture.ModelDir));
        Assert.Contains("already exists", ex.Message);
    }
}
