using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

public class DecoderModelReferenceTests
{
    public static TheoryData<string> Families => ["llama-gqa", "llama-tied", "llama3-scaling", "linear-scaling", "llama-biases", "qwen2", "qwen3", "mistral-window"];

    internal static ModelConfig ConfigFor(string family) => family switch
    {
        "llama-gqa" => TinyModels.Llama(),
        "llama-tied" => TinyModels.Llama(tied: true),
        "llama3-scaling" => TinyModels.Llama3Scaled(),
        "linear-scaling" => TinyModels.LinearScaled(),
        "llama-biases" => TinyModels.LlamaAllBiases(),
        "qwen2" => TinyModels.Qwen2(),
        "qwen3" => TinyModels.Qwen3(),
        "mistral-window" => TinyModels.Mistral(),
        _ => throw new ArgumentOutOfRangeException(nameof(family)),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Float64_logits_match_the_independent_reference(string family)
    {
        var config = ConfigFor(family);
        var weights = TinyModels.RandomWeights(config, seed: 11);
        using var model = TinyModels.Build(config, weights);
        var ids = TinyModels.RandomIds(config, 9, seed: 5);
        var expected = new ReferenceDecoder(config, weights).Forward(ids);

        using var scope = NewDisposeScope();
        var (idT, maskT) = TinyModels.Pad([ids], left: false);
        var logits = model.Forward(idT, maskT);
        Assert.Equal(new long[] { 1, 9, config.VocabSize }, logits.shape);
        Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(logits, 0), expected) < 1e-10);
    }

    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("qwen3")]
    [InlineData("mistral-window")]
    public void Float32_logits_match_the_reference_to_float32_accuracy(string family)
    {
        var config = ConfigFor(family);
        var weights = TinyModels.RandomWeights(config, seed: 12);
        using var model = TinyModels.Build(config, weights, ScalarType.Float32);
        var ids = TinyModels.RandomIds(config, 9, seed: 6);
        var expected = new ReferenceDecoder(config, weights).Forward(ids);

        using var scope = NewDisposeScope();
        var (idT, maskT) = TinyModels.Pad([ids], left: false);
        var logits = model.Forward(idT, maskT);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(logits, 0), expected) < 1e-5);
    }

    [Fact]
    public void Sliding_window_changes_the_logits_beyond_the_window()
    {
        // Guards the window test above against a reference and model that both ignore the window.
        var config = TinyModels.Mistral();
        var weights = TinyModels.RandomWeights(config, seed: 13);
        var ids = TinyModels.RandomIds(config, 9, seed: 7);
        var windowed = new ReferenceDecoder(config, weights).Forward(ids);
        using var model = TinyModels.Build(config with { SlidingWindow = null }, weights);
        using var scope = NewDisposeScope();
        var (idT, maskT) = TinyModels.Pad([ids], left: false);
        var full = TinyModels.Logits2D(model.Forward(idT, maskT), 0);
        Assert.True(TinyModels.MaxRelativeError(full, windowed) > 1e-3);
        // Within the window (first 4 positions) both agree.
        Assert.True(TinyModels.MaxRelativeError(full, windowed.Take(4).ToArray()) < 1e-10);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void State_dict_keys_and_shapes_are_the_hugging_face_ones(string family)
    {
        var config = ConfigFor(family);
        using var model = DecoderModel.Create(config, seed: 3);
        var actual = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var expected = TinyModels.ExpectedShapes(config);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in expected) Assert.Equal(shape, actual[key]);
    }

    [Fact]
    public void Llama3_scaling_rescales_only_low_and_medium_frequencies()
    {
        var inv = RotaryEmbedding.ComputeInverseFrequencies(TinyModels.Llama3Scaled(), 500000);
        var plain = ReferenceRope.InverseFrequencies(TinyModels.Llama3Scaled() with { RopeScaling = null });
        Assert.Equal(plain[0], inv[0], 12);                 // wavelength 2π < 64: unchanged
        Assert.Equal(plain[3] / 8, inv[3], 12);             // wavelength ≈ 1.2e5 > 256: divided by the factor
        Assert.InRange(inv[1], plain[1] / 8 * 1.0001, plain[1] * 0.9999); // medium band: strictly between
    }
}
