using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using Xunit.Abstractions;

namespace ReplaceMe.Core.Tests.Llama2c;

public class Llama2cImporterTests(Stories15MImport import, ITestOutputHelper output) : IClassFixture<Stories15MImport>
{
    /// <summary>The full greedy 40-token continuation of "Once upon a time" from the imported model (recorded).</summary>
    internal const string Greedy40 =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky. It was the sun!";

    [Fact]
    public void Imported_stories15M_writes_the_readme_text_greedily()
    {
        var tok = TokenizerLoader.Load(import.ModelDir);
        using var model = ReferenceGreedy.LoadModel(import.ModelDir);
        var prompt = tok.Encode("Once upon a time");
        var generated = ReferenceGreedy.Generate(model, [prompt], 40, tok.PadId)[0];
        var text = tok.Decode(prompt.Concat(generated));
        output.WriteLine(text);
        Assert.StartsWith(Stories15MImport.ReadmePrefix, text);
        Assert.Equal(Greedy40, text);
    }

    [Fact]
    public void Left_padded_batch_gives_the_unbatched_greedy_text()
    {
        var tok = TokenizerLoader.Load(import.ModelDir);
        using var model = ReferenceGreedy.LoadModel(import.ModelDir);
        string[] prompts = ["Once upon a time", "Tom had a dog named", "The sun"];
        var encoded = prompts.Select(p => (IReadOnlyList<int>)tok.Encode(p)).ToList();
        var batched = ReferenceGreedy.Generate(model, encoded, 20, tok.PadId);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(ReferenceGreedy.Generate(model, [encoded[i]], 20, tok.PadId)[0], batched[i]);
        Assert.StartsWith("Once upon a time, there was a little girl named Lily.", tok.Decode(encoded[0].Concat(batched[0])));
    }

    [Fact]
    public void Imported_folder_has_the_hugging_face_files_and_config()
    {
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(import.ModelDir, f)), f);
        Assert.Equal(File.ReadAllBytes(Path.Combine(TestPaths.Stories15MDir, "tokenizer.model")), File.ReadAllBytes(Path.Combine(import.ModelDir, "tokenizer.model")));
        var config = ModelConfigJson.Load(Path.Combine(import.ModelDir, "config.json"));
        Assert.Equal(("llama", 288, 768, 6, 6, 6, 32000, 256), (config.ModelType, config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers,
            config.NumAttentionHeads, config.NumKeyValueHeads, config.VocabSize, config.MaxPositionEmbeddings));
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal(1e-5, config.RmsNormEps);
        Assert.Equal(10000.0, config.RopeTheta);
        Assert.Equal(1, config.BosTokenId);
        Assert.Equal([2], config.EosTokenIds);
        Assert.Equal("LlamaForCausalLM", config.Raw["architectures"]![0]!.GetValue<string>());
        using var reader = SafetensorsReader.Open(import.ModelDir);
        Assert.Equal(2 + 6 * 9, reader.Names.Count); // embed, norm, 9 per layer; tied: no lm_head
        Assert.False(reader.Contains("lm_head.weight"));
        var tokConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(import.ModelDir, "tokenizer_config.json")))!;
        Assert.True(tokConfig["add_bos_token"]!.GetValue<bool>());
        Assert.Equal([1, 9038, 2501, 263, 931], TokenizerLoader.Load(import.ModelDir).Encode("Once upon a time"));
    }

    [Fact]
    public void An_existing_output_folder_needs_overwrite()
    {
        var bin = Path.Combine(TestPaths.Stories15MDir, "stories15M.bin");
        var tokModel = Path.Combine(TestPaths.Stories15MDir, "tokenizer.model");
        var ex = Assert.Throws<IOException>(() => Llama2cImporter.Import(bin, tokModel, import.ModelDir));
        Assert.Contains("already exists", ex.Message);
    }
}
