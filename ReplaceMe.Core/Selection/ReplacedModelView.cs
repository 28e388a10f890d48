using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// The model as it would be after removing some cuts and folding their transforms, simulated on the unmodified
/// model: virtual block v is original block <see cref="Original"/>(v); a kept block that absorbs transforms reports
/// MLP output <c>M·T</c> and output <c>Y + M·T</c>, exactly what the folded down-projection would produce. When a later
/// cut folds into a block that already absorbs a transform, the transforms compose (<c>T₁·T₂</c>), as sequential
/// estimation on the pruned model would. Owns its transform tensors.
/// </summary>
internal sealed class ReplacedModelView : IDisposable
{
    private readonly ITransformerAdapter _model;
    private readonly int[] _kept;                               // virtual block -> original block
    private readonly Dictionary<int, Tensor> _transforms;       // original fold block -> T [d, d], model device, float32

    public ReplacedModelView(ITransformerAdapter model)
        : this(model, [.. Enumerable.Range(0, model.BlockCount)], []) { }

    private ReplacedModelView(ITransformerAdapter model, int[] kept, Dictionary<int, Tensor> transforms)
    {
        _model = model;
        _kept = kept;
        _transforms = transforms;
    }

    public int BlockCount => _kept.Length;

    public ITransformerAdapter Model => _model;

    public int Original(int virtualBlock) => _kept[virtualBlock];

    /// <summary>
    /// The original-index cut that virtual cut <c>[start, start + length)</c> removes, or null when its blocks are not
    /// contiguous in the original model (it would straddle an earlier cut).
    /// </summary>
    public BlockCut? OriginalCut(int start, int length)
    {
        int first = _kept[start], last = _kept[start + length - 1];
        return last - first == length - 1 ? new BlockCut(first, last + 1) : null;
    }

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask) => _model.Embed(inputIds, attentionMask);

    public Tensor Head(DecoderState state) => _model.Head(state);

    /// <summary>Runs virtual blocks <c>[start, end)</c>; the capture (virtual indices) gets X, the folded M and the output.</summary>
    public void RunBlocks(DecoderState state, int start, int end, ActivationCapture? capture = null)
    {
        for (int v = start; v < end; v++)
        {
            int k = _kept[v];
            bool folded = _transforms.TryGetValue(k, out var transform);
            bool wanted = capture?.Wants(v) == true;
            if (!folded && !wanted)
            {
                _model.RunBlocks(state, k, k + 1);
                continue;
            }
            using var scope = NewDisposeScope();
            using var own = new ActivationCapture([k]);
            _model.RunBlocks(state, k, k + 1, own);
            var a = own[k];                                              // each [B, T, d] float32
            if (!folded)
            {
                capture!.Record(v, a.Input, a.MlpOutput, a.Output);
                continue;
            }
            var mlp = a.MlpOutput.matmul(transform!);                     // M·T, [B, T, d]
            var output = HeldScalars.Sum(a.AttentionResidual(), mlp);     // Y + M·T
            state.Hidden = output.to(state.Hidden.dtype).DetachFromDisposeScope(); // owned by the state
            if (wanted) capture!.Record(v, a.Input, mlp, output);
        }
    }

    /// <summary>A new view with virtual cut <c>[start, start + length)</c> removed and <paramref name="transform"/> (T [d, d], or null for identity) folded into the block before it.</summary>
    public ReplacedModelView Without(int start, int length, Tensor? transform)
    {
        int fold = _kept[start - 1];
        var transforms = _transforms.ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
        if (transform is not null)
        {
            var t = transform.to(ScalarType.Float32, _model.Device);
            var composed = transforms.Remove(fold, out var existing) ? existing.matmul(t) : t.clone();
            existing?.Dispose();
            if (!ReferenceEquals(t, transform)) t.Dispose();
            transforms[fold] = composed.DetachFromDisposeScope();
        }
        int[] kept = [.. _kept.Take(start), .. _kept.Skip(start + length)];
        return new ReplacedModelView(_model, kept, transforms);
    }

    public void Dispose()
    {
        foreach (var t in _transforms.Values) t.Dispose();
        _transforms.Clear();
    }
}
