using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Surgery;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Surgery;

public class ModelSurgeonTests
{
    public ModelSurgeonTests() => TorchRuntime.EnsureLoaded();

    private static (Tensor Ids, Tensor Mask) Tokens(int seed)
    {
        var gen = new Generator((ulong)seed);
        var ids = randint(0, 50, [3, 7], dtype: ScalarType.Int64, generator: gen);
        return (ids, ones_like(ids));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fold_output_of_fold_block_is_attention_residual_plus_mlp_times_T(bool bias)
    {
        using var model = new ToyAdapter(blocks: 5, d: 8, dff: 16, vocab: 50, seed: 1, downBias: bias);
        var (ids, mask) = Tokens(2);
        var cut = new BlockCut(2, 4);

        // Before surgery: X = M_1 and Y = L_1 − M_1 of the fold block.
        using var capture = new ActivationCapture([cut.FoldBlock]);
        using (var s = model.Embed(ids, mask)) model.RunBlocks(s, 0, cut.Start, capture);
        var x = capture[cut.FoldBlock].MlpOutput;          // [3, 7, 8]
        var y = capture[cut.FoldBlock].AttentionResidual();
        var t = randn(8, 8, dtype: ScalarType.Float64, generator: new Generator(3));

        // Hand reference: Y + X·T, computed per token with explicit loops in float64.
        var xs = x.to(ScalarType.Float64).data<double>().ToArray();
        var ys = y.to(ScalarType.Float64).data<double>().ToArray();
        var ts = t.data<double>().ToArray();
        var expected = new double[xs.Length];
        for (int row = 0; row < xs.Length / 8; row++)
            for (int j = 0; j < 8; j++)
            {
                double acc = ys[row * 8 + j];
                for (int k = 0; k < 8; k++) acc += xs[row * 8 + k] * ts[k * 8 + j];
                expected[row * 8 + j] = acc;
            }

        new ModelSurgeon().Apply(model, cut, t);

        Assert.Equal(3, model.BlockCount);
        Assert.Equal([2, 3], model.RemovedLog);
        using var after = model.Embed(ids, mask);
        model.RunBlocks(after, 0, cut.Start);               // blocks 0..1 of the pruned model
        var got = after.Hidden.data<double>().ToArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 2e-6); // capture stores float32 copies
    }

    [Fact]
    public void Cut_whose_blocks_are_identity_and_T_identity_keeps_logits()
    {
        using var model = new ToyAdapter(blocks: 6, d: 8, dff: 16, vocab: 50, seed: 4, downBias: true);
        model.MakeIdentity(3);
        model.MakeIdentity(4);
        var (ids, mask) = Tokens(5);
        var before = model.Logits(ids, mask);
        new ModelSurgeon().Apply(model, new BlockCut(3, 5), eye(8, dtype: ScalarType.Float64));
        var after = model.Logits(ids, mask);
        Assert.Equal(4, model.BlockCount);
        Assert.True(allclose(before, after, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Null_transform_is_plain_removal()
    {
        using var model = new ToyAdapter(blocks: 4, d: 8, dff: 16, vocab: 50, seed: 6);
        var w = model.GetDownProjection(0).weight!.clone();
        new ModelSurgeon().Apply(model, new BlockCut(1, 2), null);
        Assert.Equal(3, model.BlockCount);
        Assert.True(allclose(w, model.GetDownProjection(0).weight!, rtol: 0, atol: 0));
    }

    [Theory]
    [InlineData(0, 1)]   // block 0 cannot be removed first
    [InlineData(2, 2)]   // empty
    [InlineData(3, 5)]   // past the end
    public void Invalid_cuts_are_refused_before_anything_changes(int start, int end)
    {
        using var model = new ToyAdapter(blocks: 4, d: 8, dff: 16, vocab: 50, seed: 7);
        var ex = Assert.Throws<PruningException>(() => new ModelSurgeon().Apply(model, new BlockCut(start, end), null));
        Assert.Contains($"[{start}, {end})", ex.Message);
        Assert.Equal(4, model.BlockCount);
    }

    [Fact]
    public void Non_finite_or_misshaped_transform_is_refused()
    {
        using var model = new ToyAdapter(blocks: 4, d: 8, dff: 16, vocab: 50, seed: 8);
        var bad = eye(8, dtype: ScalarType.Float64);
        bad[1, 2] = tensor(double.NaN);
        Assert.Throws<PruningException>(() => new ModelSurgeon().Apply(model, new BlockCut(1, 2), bad));
        Assert.Throws<PruningException>(() => new ModelSurgeon().Apply(model, new BlockCut(1, 2), eye(7, dtype: ScalarType.Float64)));
        Assert.Equal(4, model.BlockCount);
    }
}
