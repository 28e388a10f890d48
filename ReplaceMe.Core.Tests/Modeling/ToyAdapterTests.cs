using ReplaceMe.Core.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// A user-written TorchSharp model (no attention, token-wise mixing) implementing <see cref="ITransformerAdapter"/>,
/// proving the adapter is implementable outside the library.
/// </summary>
internal sealed class ToyAdapterModel : nn.Module, ITransformerAdapter
{
    private readonly Embedding _embed;
    private readonly List<(Linear Mix, Linear Up, Linear Down)> _blocks = [];
    private readonly ModuleList<Linear> _registered = new();

    public ToyAdapterModel(int vocab, int width, int blocks) : base("Toy")
    {
        _embed = nn.Embedding(vocab, width);
        for (int i = 0; i < blocks; i++)
        {
            var block = (nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(2 * width, width));
            _blocks.Add(block);
            _registered.Add(block.Item1);
            _registered.Add(block.Item2);
            _registered.Add(block.Item3);
        }
        RegisterComponents();
    }

    public int BlockCount => _blocks.Count;
    public int HiddenSize => (int)_embed.weight!.shape[1];
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float32;

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask) =>
        new(_embed.forward(inputIds), attentionMask.clone());

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        using var noGrad = no_grad();
        for (int i = startBlock; i < endBlock; i++)
        {
            var (mix, up, down) = _blocks[i];
            var x = state.Hidden;
            var y = x + mix.forward(x).tanh();
            var m = down.forward(nn.functional.relu(up.forward(y)));
            var output = y + m;
            capture?.Record(i, x, m, output);
            state.Hidden = output;
        }
    }

    public Tensor Head(DecoderState state) => nn.functional.linear(state.Hidden, _embed.weight!);

    public Linear GetDownProjection(int block) => _blocks[block].Down;

    public void RemoveBlocks(int startBlock, int endBlock) => _blocks.RemoveRange(startBlock, endBlock - startBlock);
}

public class ToyAdapterTests
{
    /// <summary>Generic code written only against the interface, as pruning code is.</summary>
    private static Tensor RunWithCut(ITransformerAdapter model, Tensor ids, Tensor mask, int cutStart, int cutEnd, ActivationCapture capture)
    {
        using var state = model.Embed(ids, mask);
        model.RunBlocks(state, 0, cutStart, capture);
        model.RunBlocks(state, cutEnd, model.BlockCount, capture);
        return model.Head(state);
    }

    [Fact]
    public void A_user_written_model_works_through_the_adapter()
    {
        torch.manual_seed(5);
        using var toy = new ToyAdapterModel(vocab: 20, width: 8, blocks: 4);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var mask = ones_like(ids);
        using var capture = new ActivationCapture([0, 3]);
        var skipped = RunWithCut(toy, ids, mask, 1, 3, capture);
        Assert.Equal(new long[] { 2, 3, 20 }, skipped.shape);
        Assert.True(capture.Has(0) && capture.Has(3));
        // The block identity the contract describes: output = input + attention-like residual + MLP output.
        var a = capture[3];
        Assert.True(TinyModels.MaxAbsDiff(a.AttentionResidual() + a.MlpOutput, a.Output) < 1e-6);
        Assert.Equal(new long[] { 8, 16 }, toy.GetDownProjection(3).weight!.shape);

        toy.RemoveBlocks(1, 3);
        Assert.Equal(2, toy.BlockCount);
        using var capture2 = new ActivationCapture([]);
        var afterRemoval = RunWithCut(toy, ids, mask, 2, 2, capture2);
        Assert.True(TinyModels.MaxAbsDiff(afterRemoval, skipped) < 1e-6);
    }
}
