using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// An explicit request for per-block activations during <see cref="ITransformerAdapter.RunBlocks"/>: for each block
/// it wants, the adapter calls <see cref="Record"/> with the block's input X, MLP output M (down-projection output
/// before the residual add) and output X + Attn + M. Captured tensors are detached float32 copies, <c>[B, T, d]</c>,
/// owned by the capture (all positions, padding included: callers select valid positions with the mask).
/// </summary>
public sealed class ActivationCapture : IDisposable
{
    private readonly HashSet<int> _blocks;
    private readonly Dictionary<int, BlockActivations> _captured = [];

    /// <summary>Creates a capture for the given blocks (0-based indices of the current model).</summary>
    public ActivationCapture(IEnumerable<int> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        _blocks = [.. blocks];
    }

    /// <summary>The blocks this capture records.</summary>
    public IReadOnlyCollection<int> Blocks => _blocks;

    /// <summary>True when the adapter should report block <paramref name="block"/>.</summary>
    public bool Wants(int block) => _blocks.Contains(block);

    /// <summary>Called by adapters: stores float32 detached copies of the three tensors (each <c>[B, T, d]</c>).</summary>
    public void Record(int block, Tensor blockInput, Tensor mlpOutput, Tensor blockOutput)
    {
        ArgumentNullException.ThrowIfNull(blockInput);
        ArgumentNullException.ThrowIfNull(mlpOutput);
        ArgumentNullException.ThrowIfNull(blockOutput);
        if (!Wants(block)) return;
        if (_captured.Remove(block, out var old)) old.Dispose();
        _captured[block] = new BlockActivations(Keep(blockInput), Keep(mlpOutput), Keep(blockOutput));
    }

    /// <summary>The activations recorded for a block.</summary>
    /// <exception cref="KeyNotFoundException">The block was not requested or not run.</exception>
    public BlockActivations this[int block] => _captured.TryGetValue(block, out var a)
        ? a
        : throw new KeyNotFoundException($"Block {block} was not captured (requested: {string.Join(", ", _blocks.Order())}).");

    /// <summary>True when block <paramref name="block"/> has been recorded.</summary>
    public bool Has(int block) => _captured.ContainsKey(block);

    /// <summary>Drops recorded tensors so the capture can be reused for the next batch.</summary>
    public void Clear()
    {
        foreach (var a in _captured.Values) a.Dispose();
        _captured.Clear();
    }

    /// <summary>Disposes every recorded tensor.</summary>
    public void Dispose() => Clear();

    private static Tensor Keep(Tensor t)
    {
        var copy = t.detach().to(ScalarType.Float32, copy: true);
        return copy.DetachFromDisposeScope(); // owned by the capture, whatever scope the adapter runs in
    }
}

/// <summary>Activations of one block for one batch, each <c>[B, T, d]</c> float32.</summary>
/// <param name="Input">Residual stream entering the block (X).</param>
/// <param name="MlpOutput">MLP output before the residual add (M).</param>
/// <param name="Output">Residual stream leaving the block (Y + M), pre-final-norm.</param>
public sealed record BlockActivations(Tensor Input, Tensor MlpOutput, Tensor Output) : IDisposable
{
    /// <summary>Attention residual Y = Output − MlpOutput, <c>[B, T, d]</c> (a new tensor).</summary>
    public Tensor AttentionResidual() => Output - MlpOutput;

    /// <summary>Disposes the three tensors.</summary>
    public void Dispose()
    {
        Input.Dispose();
        MlpOutput.Dispose();
        Output.Dispose();
    }
}
