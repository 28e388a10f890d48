using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

public class AdapterTests
{
    [Fact]
    public void Capture_reports_block_input_mlp_output_and_pre_norm_output_like_the_reference()
    {
        var config = TinyModels.Llama(layers: 3);
        var weights = TinyModels.RandomWeights(config, seed: 31);
        using var model = TinyModels.Build(config, weights);
        var ids = TinyModels.RandomIds(config, 6, 8);
        var reference = new ReferenceDecoder(config, weights);
        var expectedLogits = reference.Forward(ids);

        using var scope = NewDisposeScope();
        var (idT, maskT) = TinyModels.Pad([ids], left: false);
        using var capture = new ActivationCapture([0, 2]);
        using var state = model.Embed(idT, maskT);
        model.RunBlocks(state, 0, 2, capture);
        model.RunBlocks(state, 2, 3, capture);
        var logits = model.Head(state);
        Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(logits, 0), expectedLogits) < 1e-10);
        Assert.False(capture.Has(1));
        foreach (int block in new[] { 0, 2 })
        {
            var a = capture[block];
            var (input, mlp, output) = reference.Trace[block];
            Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(a.Input, 0), input) < 1e-6);
            Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(a.MlpOutput, 0), mlp) < 1e-6);
            Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(a.Output, 0), output) < 1e-6);
            Assert.Equal(ScalarType.Float32, a.Output.dtype);
        }
        // The last captured state is the pre-final-norm residual stream: equal to Hidden, not to its normalized form.
        Assert.True(TinyModels.MaxAbsDiff(capture[2].Output, state.Hidden) < 1e-5);
        var normed = model.FinalNorm.forward(state.Hidden);
        Assert.True(TinyModels.MaxAbsDiff(capture[2].Output, normed) > 1e-2);
    }

    [Fact]
    public void RemoveBlocks_renumbers_keys_updates_config_and_equals_running_the_kept_blocks()
    {
        var config = TinyModels.Llama(layers: 4);
        var weights = TinyModels.RandomWeights(config, seed: 32);
        using var model = TinyModels.Build(config, weights);
        using var scope = NewDisposeScope();
        var (ids, mask) = TinyModels.Pad([TinyModels.RandomIds(config, 7, 9), TinyModels.RandomIds(config, 5, 10)], left: true);

        Tensor byHand;
        using (var state = model.Embed(ids, mask))
        {
            model.RunBlocks(state, 0, 1);
            model.RunBlocks(state, 3, 4);
            byHand = model.Head(state);
        }
        var oldLayer3Down = model.GetDownProjection(3).weight!.clone();

        model.RemoveBlocks(1, 3);

        Assert.Equal(2, model.BlockCount);
        Assert.Equal(2, model.Config.NumHiddenLayers);
        Assert.Equal(2, (int)model.Config.Raw["num_hidden_layers"]!);
        var keys = model.state_dict().Keys.ToList();
        Assert.Contains("model.layers.1.mlp.down_proj.weight", keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("model.layers.2.", StringComparison.Ordinal));
        Assert.Equal(TinyModels.ExpectedShapes(model.Config).Keys.Order(StringComparer.Ordinal), keys.Order(StringComparer.Ordinal));
        Assert.True(TinyModels.MaxAbsDiff(model.GetDownProjection(1).weight!, oldLayer3Down) == 0);

        var after = model.Forward(ids, mask);
        Assert.True(TinyModels.MaxAbsDiff(after, byHand) < 1e-12);
        using var cache = new KvCache();
        var cached = model.Forward(ids, mask, cache); // cache slots follow the renumbered blocks
        Assert.True(TinyModels.MaxAbsDiff(cached, byHand) < 1e-12);
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_refused_with_the_id_named()
    {
        var config = TinyModels.Llama(layers: 1);
        using var model = TinyModels.Build(config, TinyModels.RandomWeights(config, 3), ScalarType.Float32);
        using var mask = ones([1, 3], ScalarType.Int64);
        using var tooLarge = tensor(new long[] { 1, 7, 50 }, [1, 3]);
        var ex = Assert.Throws<ReplaceMeException>(() => model.Embed(tooLarge, mask).Dispose());
        Assert.Contains("Token id 50", ex.Message);
        Assert.Contains("[0, 50)", ex.Message);
        using var negative = tensor(new long[] { 1, -3, 4 }, [1, 3]);
        Assert.Contains("Token id -3", Assert.Throws<ReplaceMeException>(() => model.Forward(negative, mask).Dispose()).Message);
        // Padding positions may hold any id (some tokenizers pad with -100 or an id past the vocabulary).
        using var padded = tensor(new long[] { 1, 7, 999 }, [1, 3]);
        using var padMask = tensor(new long[] { 1, 1, 0 }, [1, 3]);
        using var logits = model.Forward(padded, padMask);
        Assert.True(logits.isfinite().all().item<bool>());
    }

    [Fact]
    public void RemoveBlocks_rejects_bad_ranges()
    {
        using var model = DecoderModel.Create(TinyModels.Llama(layers: 3), seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.RemoveBlocks(2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.RemoveBlocks(1, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.GetDownProjection(3));
        Assert.Equal(3, model.BlockCount);
    }

    [Fact]
    public void LoadStateDict_names_missing_unexpected_and_mismatched_keys()
    {
        var config = TinyModels.Qwen3();
        using var model = DecoderModel.Create(config, seed: 1);
        var good = TinyModels.ToTensors(config, TinyModels.RandomWeights(config, 4), ScalarType.BFloat16);

        var missing = new Dictionary<string, Tensor>(good);
        missing.Remove("model.layers.1.self_attn.k_norm.weight");
        var ex = Assert.Throws<CheckpointFormatException>(() => model.LoadStateDict(missing));
        Assert.Contains("model.layers.1.self_attn.k_norm.weight", ex.Message, StringComparison.Ordinal);

        var extra = new Dictionary<string, Tensor>(good) { ["model.layers.7.mlp.up_proj.weight"] = zeros(2, 2) };
        ex = Assert.Throws<CheckpointFormatException>(() => model.LoadStateDict(extra));
        Assert.Contains("model.layers.7.mlp.up_proj.weight", ex.Message, StringComparison.Ordinal);

        var wrong = new Dictionary<string, Tensor>(good) { ["model.layers.0.mlp.down_proj.weight"] = zeros(32, 47) };
        ex = Assert.Throws<CheckpointFormatException>(() => model.LoadStateDict(wrong));
        Assert.Contains("model.layers.0.mlp.down_proj.weight", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[32, 47]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[32, 48]", ex.Message, StringComparison.Ordinal);

        // bf16 tensors are upcast to the float32 compute dtype; a tied model accepts (and ignores) lm_head.weight.
        var withHead = new Dictionary<string, Tensor>(good) { ["lm_head.weight"] = zeros(50, 32) };
        model.LoadStateDict(withHead);
        Assert.Equal(ScalarType.Float32, model.state_dict()["model.norm.weight"].dtype);
        Assert.True(TinyModels.MaxAbsDiff(model.state_dict()["model.norm.weight"], good["model.norm.weight"]) == 0);
    }

    [Fact]
    public void Create_rejects_unsupported_configs()
    {
        Assert.Throws<UnsupportedModelException>(() => DecoderModel.Create(TinyModels.Llama() with { ModelType = "gpt2" }));
        Assert.Throws<UnsupportedModelException>(() => DecoderModel.Create(TinyModels.Llama() with { NumKeyValueHeads = 3 }));
        Assert.Throws<UnsupportedModelException>(() => DecoderModel.Create(TinyModels.Llama() with { RopeScaling = new RopeScaling("yarn", 4) }));
        Assert.Throws<UnsupportedModelException>(() => DecoderModel.Create(TinyModels.Llama(), new ModelLoadOptions(DType: ScalarType.Int32)));
    }

    [Fact]
    public void Same_seed_gives_the_same_random_model()
    {
        using var a = DecoderModel.Create(TinyModels.Llama(), seed: 7);
        using var b = DecoderModel.Create(TinyModels.Llama(), seed: 7);
        using var c = DecoderModel.Create(TinyModels.Llama(), seed: 8);
        Assert.True(TinyModels.MaxAbsDiff(a.state_dict()["lm_head.weight"], b.state_dict()["lm_head.weight"]) == 0);
        Assert.True(TinyModels.MaxAbsDiff(a.state_dict()["lm_head.weight"], c.state_dict()["lm_head.weight"]) > 0);
    }
}
