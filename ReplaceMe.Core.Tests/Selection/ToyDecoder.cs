using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Selection;

/// <summary>
/// One block of <see cref="ToyDecoder"/>: Y = X + causalMean(X)·Attn, M = f(Y·Up)·Down, out = Y + M, with f = tanh
/// or identity (a linear MLP). All matrices are <c>[d, d]</c> float32, applied on the right.
/// </summary>
internal sealed record ToyBlock(Tensor Attn, Tensor Up, Tensor Down, bool Linear = false);

/// <summary>
/// A tiny decoder implementing <see cref="ITransformerAdapter"/> for selection tests: embedding lookup, blocks that mix
/// tokens only through a causal mean over real tokens (so padding never matters), and a linear head. No norms, so
/// linear blocks are exactly linear. Counts head calls.
/// </summary>
internal sealed class ToyDecoder : ITransformerAdapter, IDisposable
{
    private readonly List<ToyBlock> _blocks;

    public ToyDecoder(Tensor embedding, IEnumerable<ToyBlock> blocks, Tensor head)
    {
        TorchRuntime.EnsureLoaded();
        Embedding = embedding;
        HeadWeight = head;
        _blocks = [.. blocks];
    }

    public Tensor Embedding { get; }          // [V, d]
    public Tensor HeadWeight { get; }         // [d, V]
    public int HeadCalls { get; private set; }
    /// <summary>When set, this block's output becomes NaN (to test non-finite handling).</summary>
    public int? PoisonBlock { get; set; }
    public int BlockCount => _blocks.Count;
    public int HiddenSize => (int)Embedding.shape[1];
    public int VocabSize => (int)Embedding.shape[0];
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float32;

    /// <summary>Random model: every block gets tanh MLP and attention with the given scales (index = block).</summary>
    /// <remarks>Blocks listed in <paramref name="identity"/> get zero attention and MLP: their output equals their input.</remarks>
    public static ToyDecoder Random(int seed, int d, int vocab, double[] attnScales, double[] mlpScales, double headScale = 1.0, int[]? identity = null)
    {
        TorchRuntime.EnsureLoaded();
        _ = manual_seed(seed);
        var blocks = attnScales.Select((a, k) => new ToyBlock(
            (randn(d, d) * (identity?.Contains(k) == true ? 0.0 : a / Math.Sqrt(d))).DetachFromDisposeScope(),
            (randn(d, d) / Math.Sqrt(d)).DetachFromDisposeScope(),
            (randn(d, d) * (identity?.Contains(k) == true ? 0.0 : mlpScales[k] / Math.Sqrt(d))).DetachFromDisposeScope()));
        return new ToyDecoder(randn(vocab, d).DetachFromDisposeScope(), [.. blocks], (randn(d, vocab) * (headScale / Math.Sqrt(d))).DetachFromDisposeScope());
    }

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var hidden = Embedding.index_select(0, inputIds.reshape(-1)).reshape(inputIds.shape[0], inputIds.shape[1], HiddenSize);
        return new DecoderState(hidden.MoveToOuterDisposeScope(), attentionMask.clone().MoveToOuterDisposeScope());
    }

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        if (startBlock < 0 || endBlock > BlockCount || startBlock > endBlock) throw new ArgumentOutOfRangeException(nameof(endBlock));
        for (int k = startBlock; k < endBlock; k++)
        {
            using var scope = NewDisposeScope();
            var b = _blocks[k];
            var x = state.Hidden;                                                   // [B, T, d]
            var m = state.AttentionMask.to(ScalarType.Float32).unsqueeze(-1);       // [B, T, 1]
            var mean = (x * m).cumsum(1) / m.cumsum(1).clamp_min(1.0);              // causal mean over real tokens
            var y = x + mean.matmul(b.Attn);
            var pre = y.matmul(b.Up);
            var mlp = (b.Linear ? pre : pre.tanh()).matmul(b.Down);
            var output = PoisonBlock == k ? (y + mlp) * double.NaN : y + mlp;
            capture?.Record(k, x, mlp, output);
            state.Hidden = output.MoveToOuterDisposeScope();
        }
    }

    public Tensor Head(DecoderState state)
    {
        HeadCalls++;
        return state.Hidden.matmul(HeadWeight);
    }

    public TorchSharp.Modules.Linear GetDownProjection(int block) =>
        throw new NotSupportedException("The toy decoder has no Linear modules; selection never folds.");

    public void RemoveBlocks(int startBlock, int endBlock) => _blocks.RemoveRange(startBlock, endBlock - startBlock);

    public void Dispose()
    {
        Embedding.Dispose();
        HeadWeight.Dispose();
        foreach (var b in _blocks) { b.Attn.Dispose(); b.Up.Dispose(); b.Down.Dispose(); }
    }
}
