using ReplaceMe.Core.Modeling;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// The pipeline's view of the caller's model while a prune is in progress. It makes <c>Prune</c> all-or-nothing and
/// counts the work:
/// <list type="bullet">
/// <item>Block removals are recorded, not performed: the view skips removed blocks (virtual block v runs original block
/// <see cref="Original"/>(v)), which computes exactly what the pruned model computes (every block is the same module on
/// the same weights; only the walk over them changes). <see cref="Commit"/> replays the removals on the real model in
/// the order they were requested.</item>
/// <item>A down-projection handed out for folding is first copied (weight and bias, once per block), so
/// <see cref="Rollback"/> restores the caller's weights bit for bit. The copies cost one <c>d × d_ff</c> matrix per
/// cut, not a copy of the model.</item>
/// <item>Every block run is counted as block × positions (<see cref="BlockPositions"/>), for the forward-equivalents
/// figure of <see cref="PruningResult.ForwardEquivalents"/>.</item>
/// </list>
/// </summary>
internal sealed class StagedModel : ITransformerAdapter
{
    private readonly ITransformerAdapter _model;
    private readonly List<int> _kept;                                            // virtual block -> original block
    private readonly List<(int Start, int End)> _removals = [];                  // in the indices current when requested
    private readonly Dictionary<int, (Linear Linear, Tensor Weight, Tensor? Bias)> _saved = []; // original block -> copies

    public StagedModel(ITransformerAdapter model)
    {
        _model = model;
        _kept = [.. Enumerable.Range(0, model.BlockCount)];
    }

    /// <summary>Blocks run × positions (batch × sequence length) so far.</summary>
    public long BlockPositions { get; private set; }

    public int BlockCount => _kept.Count;

    public int HiddenSize => _model.HiddenSize;

    public Device Device => _model.Device;

    public ScalarType DType => _model.DType;

    /// <summary>The original block behind virtual block <paramref name="block"/>.</summary>
    public int Original(int block) => _kept[block];

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask) => _model.Embed(inputIds, attentionMask);

    public Tensor Head(DecoderState state) => _model.Head(state);

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (startBlock < 0 || endBlock > BlockCount || startBlock > endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Block range [{startBlock}, {endBlock}) must lie inside [0, {BlockCount}].");
        long positions = state.Hidden.shape[0] * state.Hidden.shape[1];
        using var own = capture is null ? null : new ActivationCapture(
            Enumerable.Range(startBlock, endBlock - startBlock).Where(capture.Wants).Select(v => _kept[v]));
        int v0 = startBlock;
        while (v0 < endBlock)
        {
            int v1 = v0 + 1;                                                     // longest run contiguous in the original
            while (v1 < endBlock && _kept[v1] == _kept[v1 - 1] + 1) v1++;
            _model.RunBlocks(state, _kept[v0], _kept[v1 - 1] + 1, own);
            BlockPositions += (v1 - v0) * positions;
            v0 = v1;
        }
        if (capture is null || own is null) return;
        for (int v = startBlock; v < endBlock; v++)
            if (own.Has(_kept[v]))
            {
                var a = own[_kept[v]];
                capture.Record(v, a.Input, a.MlpOutput, a.Output);
            }
    }

    /// <summary>The real down-projection of virtual block <paramref name="block"/>, saved first so that <see cref="Rollback"/> can restore it.</summary>
    public Linear GetDownProjection(int block)
    {
        if (block < 0 || block >= BlockCount)
            throw new ArgumentOutOfRangeException(nameof(block), $"Block {block} does not exist (the model has {BlockCount}).");
        int original = _kept[block];
        var linear = _model.GetDownProjection(original);
        if (!_saved.ContainsKey(original))
        {
            using var noGrad = no_grad();
            var weight = linear.weight ?? throw new PruningException($"Block {original}'s down-projection has no weight.");
            _saved[original] = (linear, weight.detach().clone().DetachFromDisposeScope(), linear.bias?.detach().clone().DetachFromDisposeScope());
        }
        return linear;
    }

    /// <summary>Records the removal; the real model keeps its blocks until <see cref="Commit"/>.</summary>
    public void RemoveBlocks(int startBlock, int endBlock)
    {
        if (startBlock < 0 || endBlock > BlockCount || startBlock >= endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Cut [{startBlock}, {endBlock}) must be a non-empty range inside [0, {BlockCount}).");
        _kept.RemoveRange(startBlock, endBlock - startBlock);
        _removals.Add((startBlock, endBlock));
    }

    /// <summary>Performs the recorded removals on the real model and drops the saved weights.</summary>
    public void Commit()
    {
        foreach (var (start, end) in _removals) _model.RemoveBlocks(start, end);
        _removals.Clear();
        DropSaved();
    }

    /// <summary>Restores every down-projection handed out to its saved values; nothing was removed from the real model.</summary>
    public void Rollback()
    {
        using var noGrad = no_grad();
        foreach (var (linear, weight, bias) in _saved.Values)
        {
            linear.weight!.copy_(weight);
            if (bias is not null) linear.bias!.copy_(bias);
        }
        _removals.Clear();
        DropSaved();
    }

    private void DropSaved()
    {
        foreach (var (_, weight, bias) in _saved.Values)
        {
            weight.Dispose();
            bias?.Dispose();
        }
        _saved.Clear();
    }
}
