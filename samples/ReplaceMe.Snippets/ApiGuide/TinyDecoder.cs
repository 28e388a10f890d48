// "Bring your own transformer" (docs/api-guide.md). samples/notebooks/02-bring-your-own-transformer.ipynb runs this
// same code (its generator copies the snippet), trains the model briefly and prunes it.
// <snippet:tiny-decoder>
using ReplaceMe.Core.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

/// <summary>One pre-norm block: Y = X + Attn(Norm1(X)), M = Down(relu(Up(Norm2(Y)))), out = Y + M.</summary>
public sealed class TinyBlock
{
    private readonly int _heads;

    public TinyBlock(int d, int heads, int ffn)
    {
        _heads = heads;
        (Norm1, Qkv, Out) = (nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d));
        (Norm2, Up, Down) = (nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d));
    }

    public LayerNorm Norm1 { get; }
    public Linear Qkv { get; }
    public Linear Out { get; }
    public LayerNorm Norm2 { get; }
    public Linear Up { get; }
    public Linear Down { get; }

    public IEnumerable<Parameter> Parameters() =>
        new nn.Module[] { Norm1, Qkv, Out, Norm2, Up, Down }.SelectMany(m => m.parameters());

    /// <summary>Y (attention residual) and M (MLP output) for x [B, T, d]; bias [B, 1, T, T] holds 0 or -1e9.</summary>
    public (Tensor Y, Tensor M) Forward(Tensor x, Tensor bias)
    {
        long b = x.shape[0], t = x.shape[1], d = x.shape[2], hd = d / _heads;
        var qkv = Qkv.forward(Norm1.forward(x)).view(b, t, 3, _heads, hd).permute(2, 0, 3, 1, 4); // [3, B, H, T, hd]
        var scores = qkv[0].matmul(qkv[1].transpose(-2, -1)) / Math.Sqrt(hd) + bias;              // [B, H, T, T]
        var context = scores.softmax(-1).matmul(qkv[2]).transpose(1, 2).reshape(b, t, d);        // [B, T, d]
        var y = x + Out.forward(context);
        var m = Down.forward(Up.forward(Norm2.forward(y)).relu());
        return (y, m);
    }
}

/// <summary>A tiny decoder-only language model written directly with TorchSharp layers.</summary>
public sealed class TinyDecoder
{
    public TinyDecoder(int vocab, int d, int heads, int ffn, int blocks, int maxLength)
    {
        TokenEmbedding = nn.Embedding(vocab, d);
        PositionEmbedding = nn.Embedding(maxLength, d);
        Blocks = Enumerable.Range(0, blocks).Select(_ => new TinyBlock(d, heads, ffn)).ToList();
        FinalNorm = nn.LayerNorm(d);
        LmHead = nn.Linear(d, vocab, hasBias: false);
        HiddenSize = d;
    }

    public Embedding TokenEmbedding { get; }
    public Embedding PositionEmbedding { get; }
    public List<TinyBlock> Blocks { get; }
    public LayerNorm FinalNorm { get; }
    public Linear LmHead { get; }
    public int HiddenSize { get; }

    public IEnumerable<Parameter> Parameters() => Blocks.SelectMany(b => b.Parameters())
        .Concat(new nn.Module[] { TokenEmbedding, PositionEmbedding, FinalNorm, LmHead }.SelectMany(m => m.parameters()));

    /// <summary>Token plus position embedding of ids [B, T]: [B, T, d].</summary>
    public Tensor Embed(Tensor ids) => TokenEmbedding.forward(ids) + PositionEmbedding.forward(arange(ids.shape[1]));

    /// <summary>Additive attention bias [B, 1, T, T]: query i sees key j when j ≤ i and j is a real token (mask [B, T]).</summary>
    public static Tensor AttentionBias(Tensor mask)
    {
        long t = mask.shape[1];
        var allowed = ones(t, t).tril().gt(0).unsqueeze(0).logical_and(mask.unsqueeze(1).eq(1)).unsqueeze(1);
        return zeros(allowed.shape).masked_fill(allowed.logical_not(), -1e9); // -1e9, not -inf: all-padding rows stay finite
    }

    /// <summary>Logits [B, T, vocab] for unpadded ids [B, T] (used for training).</summary>
    public Tensor Forward(Tensor ids)
    {
        var bias = AttentionBias(ones_like(ids));
        var h = Embed(ids);
        foreach (var block in Blocks)
        {
            var (y, m) = block.Forward(h, bias);
            h = y + m;
        }
        return LmHead.forward(FinalNorm.forward(h));
    }
}

/// <summary>Lets ReplaceMe profile, fit and cut a <see cref="TinyDecoder"/>.</summary>
public sealed class TinyDecoderAdapter : ITransformerAdapter
{
    private readonly TinyDecoder _model;

    public TinyDecoderAdapter(TinyDecoder model) => _model = model;

    public int BlockCount => _model.Blocks.Count;
    public int HiddenSize => _model.HiddenSize;
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float32;

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var hidden = _model.Embed(inputIds);                      // [B, T, d]
        var bias = TinyDecoder.AttentionBias(attentionMask);      // [B, 1, T, T], kept in the state for every block
        return new DecoderState(hidden.MoveToOuterDisposeScope(), attentionMask.clone().MoveToOuterDisposeScope())
        {
            ModelData = bias.MoveToOuterDisposeScope(),
        };
    }

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        var bias = (Tensor)state.ModelData!;
        using var noGrad = no_grad();
        for (int i = startBlock; i < endBlock; i++)
        {
            using var scope = NewDisposeScope();
            var (y, m) = _model.Blocks[i].Forward(state.Hidden, bias);
            var output = y + m;
            capture?.Record(i, state.Hidden, m, output); // X, M, out; the capture copies what it keeps
            state.Hidden = output.MoveToOuterDisposeScope();
        }
    }

    public Tensor Head(DecoderState state)
    {
        using var noGrad = no_grad();
        return _model.LmHead.forward(_model.FinalNorm.forward(state.Hidden)); // [B, T, vocab]
    }

    public Linear GetDownProjection(int block) => _model.Blocks[block].Down; // the surgeon folds T into it

    public void RemoveBlocks(int startBlock, int endBlock) => _model.Blocks.RemoveRange(startBlock, endBlock - startBlock);
}
// </snippet:tiny-decoder>
