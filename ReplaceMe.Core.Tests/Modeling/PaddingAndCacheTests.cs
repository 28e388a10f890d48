using ReplaceMe.Core.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

public class PaddingAndCacheTests
{
    [Theory]
    [InlineData("llama-gqa", true)]
    [InlineData("llama-gqa", false)]
    [InlineData("qwen3", true)]
    [InlineData("mistral-window", true)]
    [InlineData("mistral-window", false)]
    public void Padded_batch_matches_unpadded_sequences_at_valid_positions(string family, bool left)
    {
        var config = DecoderModelReferenceTests.ConfigFor(family);
        var weights = TinyModels.RandomWeights(config, seed: 21);
        using var model = TinyModels.Build(config, weights);
        int[][] rows = [TinyModels.RandomIds(config, 9, 1), TinyModels.RandomIds(config, 4, 2), TinyModels.RandomIds(config, 7, 3)];
        using var scope = NewDisposeScope();
        var (ids, mask) = TinyModels.Pad(rows, left);
        var batched = model.Forward(ids, mask);
        Assert.False(batched.isnan().any().item<bool>(), "padded positions must stay finite");
        for (int b = 0; b < rows.Length; b++)
        {
            var (oneIds, oneMask) = TinyModels.Pad([rows[b]], left);
            var single = TinyModels.Logits2D(model.Forward(oneIds, oneMask), 0);
            var expected = Enumerable.Range(0, rows[b].Length).Select(t => Enumerable.Range(0, config.VocabSize).Select(v => single[t, v]).ToArray()).ToArray();
            int offset = left ? 9 - rows[b].Length : 0;
            Assert.True(TinyModels.MaxRelativeError(TinyModels.Logits2D(batched, b), expected, offset) < 1e-10, $"row {b}");
        }
    }

    [Theory]
    [InlineData("llama-gqa")]
    [InlineData("qwen2")]
    [InlineData("mistral-window")]
    public void Incremental_decoding_with_the_cache_equals_the_full_forward(string family)
    {
        var config = DecoderModelReferenceTests.ConfigFor(family);
        var weights = TinyModels.RandomWeights(config, seed: 22);
        using var model = TinyModels.Build(config, weights);
        int[][] rows = [TinyModels.RandomIds(config, 10, 4), TinyModels.RandomIds(config, 7, 5)];
        using var scope = NewDisposeScope();
        var (ids, mask) = TinyModels.Pad(rows, left: true);
        var full = model.Forward(ids, mask); // [2, 10, V]

        using var cache = new KvCache();
        var pieces = new List<Tensor> { model.Forward(ids.narrow(1, 0, 5), mask.narrow(1, 0, 5), cache) };
        for (int t = 5; t < 10; t++) pieces.Add(model.Forward(ids.narrow(1, t, 1), mask.narrow(1, t, 1), cache));
        Assert.Equal(10, cache.Length);
        var incremental = cat(pieces, 1);
        // Compare real positions only (row 1 has 3 left pads whose query rows are fully masked).
        var valid = mask.to(ScalarType.Bool).unsqueeze(-1);
        Assert.True(TinyModels.MaxAbsDiff(incremental.masked_fill(valid.logical_not(), 0), full.masked_fill(valid.logical_not(), 0)) < 1e-10);
    }

    [Fact]
    public void Cache_rejects_a_different_batch_size()
    {
        using var model = DecoderModel.Create(TinyModels.Llama(), seed: 1);
        using var scope = NewDisposeScope();
        using var cache = new KvCache();
        var (ids, mask) = TinyModels.Pad([[3, 4, 5], [6, 7, 8]], left: true);
        model.Forward(ids, mask, cache);
        var (one, oneMask) = TinyModels.Pad([[9]], left: true);
        var ex = Assert.Throws<ArgumentException>(() => model.Forward(one, oneMask, cache));
        Assert.Contains("batch of 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Float32_model_runs_a_fully_padded_row_without_nan()
    {
        using var model = DecoderModel.Create(TinyModels.Llama(), seed: 1);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 0, 0, 5, 6 }, [1, 4]);
        var mask = tensor(new long[] { 0, 0, 1, 1 }, [1, 4]);
        var logits = model.Forward(ids, mask);
        Assert.True(logits.isfinite().all().item<bool>());
    }
}
