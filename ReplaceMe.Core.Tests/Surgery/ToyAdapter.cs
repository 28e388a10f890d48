using ReplaceMe.Core.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Surgery;

/// <summary>
/// A tiny pre-norm decoder for surgery and pipeline tests, written independently of the library's model:
/// per block Y = X + tanh(X·A) (token-wise "attention"), M = down(relu(up(Y))), out = Y + M. No cross-token mixing,
/// so results do not depend on padding. Float64 throughout so comparisons can be tight.
/// </summary>
internal sealed class ToyAdapter : ITransformerAdapter, IDisposable
{
    private readonly Tensor _embedding;   // [V, d]
    private readonly Tensor _head;        // [V, d]
    private readonly List<(Tensor Attn, Linear Up, Linear Down)> _blocks = [];

    public ToyAdapter(int blocks, int d, int dff, int vocab, int seed, bool downBias = false)
    {
        var gen = new Generator((ulong)seed);
        HiddenSize = d;
        _embedding = randn(vocab, d, dtype: ScalarType.Float64, generator: gen);
        _head = randn(vocab, d, dtype: ScalarType.Float64, generator: gen) / Math.Sqrt(d);
        for (int k = 0; k < blocks; k++)
        {
            var attn = randn(d, d, dtype: ScalarType.Float64, generator: gen) * (0.5 / Math.Sqrt(d));
            var up = nn.Linear(d, dff, hasBias: false, dtype: ScalarType.Float64);
            var down = nn.Linear(dff, d, hasBias: downBias, dtype: ScalarType.Float64);
            using (no_grad())
            {
                up.weight!.copy_(randn(dff, d, dtype: ScalarType.Float64, generator: gen) / Math.Sqrt(d));
                down.weight!.copy_(randn(d, dff, dtype: ScalarType.Float64, generator: gen) / Math.Sqrt(dff));
                down.bias?.copy_(randn(d, dtype: ScalarType.Float64, generator: gen) * 0.1);
            }
            _blocks.Add((attn, up, down));
        }
    }

    public int BlockCount => _blocks.Count;
    public int HiddenSize { get; }
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float64;
    public List<int> RemovedLog { get; } = [];

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask) =>
        new(_embedding.index_select(0, inputIds.flatten()).reshape(inputIds.shape[0], inputIds.shape[1], HiddenSize),
            attentionMask.clone());

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        for (int k = startBlock; k < endBlock; k++)
        {
            var (attn, up, down) = _blocks[k];
            using var scope = NewDisposeScope();
            var x = state.Hidden;
            var y = x + tanh(x.matmul(attn));
            var m = down.forward(nn.functional.relu(up.forward(y)));
            var output = (y + m).MoveToOuterDisposeScope();
            capture?.Record(k, x, m, output);
            state.Hidden = output;
        }
    }

    public Tensor Head(DecoderState state) => state.Hidden.matmul(_head.t());

    public Linear GetDownProjection(int block) => _blocks[block].Down;

    /// <summary>Makes block k an exact identity (attention and MLP contribute nothing).</summary>
    public void MakeIdentity(int block)
    {
        using var noGrad = no_grad();
        _blocks[block].Attn.zero_();
        _blocks[block].Down.weight!.zero_();
        _blocks[block].Down.bias?.zero_();
    }

    public void RemoveBlocks(int startBlock, int endBlock)
    {
        for (int k = startBlock; k < endBlock; k++) RemovedLog.Add(k);
        _blocks.RemoveRange(startBlock, endBlock - startBlock);
    }

    public Tensor Logits(Tensor ids, Tensor mask)
    {
        using var state = Embed(ids, mask);
        RunBlocks(state, 0, BlockCount);
        return Head(state);
    }

    public void Dispose()
    {
        _embedding.Dispose();
        _head.Dispose();
        foreach (var (a, u, d) in _blocks) { a.Dispose(); u.Dispose(); d.Dispose(); }
    }
}
