using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tests.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// NaN or infinite weights are named when the checkpoint loads, and a model that computes NaN anyway (a poisoned
/// weight set after loading, an overflowing dtype) makes generation and evaluation fail with a typed error instead of
/// an empty story or "ppl NaN" (issue 11, item 8).
/// </summary>
public class NonFiniteWeightsTests
{
    /// <summary>A copy of stories15M whose <c>model.norm.weight</c> bytes are overwritten with <paramref name="value"/>.</summary>
    private static string PoisonedCopy(TempDir dir, float value)
    {
        var folder = dir.Combine("poisoned");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(Stories15MTestModel.Shared.ModelDir))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        var weights = Path.Combine(folder, "model.safetensors");
        using var stream = new FileStream(weights, FileMode.Open, FileAccess.ReadWrite);
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        var header = new byte[BinaryPrimitives.ReadInt64LittleEndian(lengthBytes)];
        stream.ReadExactly(header);
        var entry = JsonNode.Parse(Encoding.UTF8.GetString(header))!["model.norm.weight"]!;
        Assert.Equal("F32", (string?)entry["dtype"]);
        long begin = (long)entry["data_offsets"]![0]!, end = (long)entry["data_offsets"]![1]!;
        var bytes = new byte[end - begin];
        for (int i = 0; i < bytes.Length; i += 4) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i), value);
        stream.Position = 8 + header.Length + begin;
        stream.Write(bytes);
        return folder;
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void A_checkpoint_with_non_finite_weights_is_refused_naming_the_tensor(float value)
    {
        using var dir = TestPaths.NewTempDir();
        var folder = PoisonedCopy(dir, value);
        var ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(folder));
        Assert.Contains("'model.norm.weight'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("288 NaN or infinite value(s)", ex.Message, StringComparison.Ordinal); // d = 288: every entry
    }

    [Fact]
    public void Values_that_overflow_float16_are_named_as_such()
    {
        using var dir = TestPaths.NewTempDir();
        var folder = PoisonedCopy(dir, 1e6f); // finite in float32, +Inf in float16 (max 65504)
        using (var f32 = DecoderModel.FromPretrained(folder)) Assert.Equal(6, f32.BlockCount);
        var ex = Assert.Throws<CheckpointFormatException>(() => DecoderModel.FromPretrained(folder, new ModelLoadOptions(DType: ScalarType.Float16)));
        Assert.Contains("overflow float16", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadStateDict_refuses_non_finite_tensors_before_copying_anything()
    {
        var config = TinyModels.Llama();
        using var model = TinyModels.Build(config, TinyModels.RandomWeights(config, seed: 3));
        var weights = TinyModels.RandomWeights(config, seed: 4);
        weights["model.layers.1.mlp.up_proj.weight"][7] = double.NaN;
        var tensors = TinyModels.ToTensors(config, weights);
        using var before = model.state_dict()["model.embed_tokens.weight"].clone();

        var ex = Assert.Throws<CheckpointFormatException>(() => model.LoadStateDict(tensors));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", ex.Message, StringComparison.Ordinal);
        Assert.True(model.state_dict()["model.embed_tokens.weight"].eq(before).all().item<bool>(), "nothing may be copied");
        foreach (var t in tensors.Values) t.Dispose();
    }

    /// <summary>stories15M with its final norm set to NaN after loading (the load-time check cannot see it).</summary>
    private static DecoderModel PoisonedAfterLoad()
    {
        var model = DecoderModel.FromPretrained(Stories15MTestModel.Shared.ModelDir);
        using (no_grad()) model.state_dict()["model.norm.weight"].fill_(float.NaN);
        return model;
    }

    [Fact]
    public void Generation_with_NaN_logits_fails_instead_of_returning_an_empty_story()
    {
        using var model = PoisonedAfterLoad();
        var generator = new TextGenerator(model);
        var ex = Assert.Throws<NonFiniteOutputException>(() =>
            generator.Generate(Stories15MTestModel.Shared.Tokenizer, ["Once upon a time"], new GenerationOptions { MaxNewTokens = 4, Temperature = 0 }));
        Assert.Contains("Generation step 0 of prompt 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("NaN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Perplexity_with_NaN_log_probabilities_fails_instead_of_reporting_NaN()
    {
        using var model = PoisonedAfterLoad();
        var evaluator = new ModelEvaluator(model, Stories15MTestModel.Shared.Tokenizer);
        var ex = Assert.Throws<NonFiniteOutputException>(() =>
            evaluator.Perplexity("stories", ["Once upon a time there was a little cat.", "The dog ran to the park."]));
        Assert.Contains("log-probability", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_cli_prints_one_error_line_for_a_checkpoint_with_NaN_weights()
    {
        using var dir = TestPaths.NewTempDir();
        var folder = PoisonedCopy(dir, float.NaN);
        CliRun.AssertOneLineError(CliRun.Run("generate", "--model", folder, "--prompt", "Once upon a time", "--max-new-tokens", "4"),
            "'model.norm.weight'");
        var text = dir.Combine("stories.txt");
        File.WriteAllText(text, "Once upon a time there was a cat.\n\nThe dog ran to the park and played all day.\n");
        CliRun.AssertOneLineError(CliRun.Run("evaluate", "--model", folder, "--text", text), "NaN or infinite");
    }
}
