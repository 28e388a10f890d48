using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// A batch on its way through a transformer: the residual stream plus the per-batch data that blocks need.
/// Owns its tensors; dispose it when done. Every tensor it is given is detached from its TorchSharp dispose scope, so
/// no scope of the caller or the adapter can free it (see <see cref="ITransformerAdapter"/> on ownership).
/// </summary>
public class DecoderState : IDisposable
{
    private Tensor _hidden;
    private IDisposable? _modelData;

    /// <summary>Creates a state.</summary>
    /// <param name="hidden">Residual stream <c>[B, T, d]</c>; ownership passes to the state.</param>
    /// <param name="attentionMask">1 = token, 0 = padding, <c>[B, T]</c> int64; ownership passes to the state.</param>
    public DecoderState(Tensor hidden, Tensor attentionMask)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(attentionMask);
        _hidden = hidden.DetachFromDisposeScope();
        AttentionMask = attentionMask.DetachFromDisposeScope();
    }

    /// <summary>
    /// Residual stream <c>[B, T, d]</c>. Setting it takes ownership of the new tensor (detached from its dispose scope)
    /// and disposes the previous one unless it is the same.
    /// </summary>
    public Tensor Hidden
    {
        get => _hidden;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.DetachFromDisposeScope();
            if (!ReferenceEquals(value, _hidden)) _hidden.Dispose();
            _hidden = value;
        }
    }

    /// <summary>1 = token, 0 = padding, <c>[B, T]</c> int64.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>
    /// Model-specific data an adapter attaches (positions, masks, RoPE tables); disposed with the state. A tensor given
    /// here directly is detached from its dispose scope like <see cref="Hidden"/>.
    /// </summary>
    public IDisposable? ModelData
    {
        get => _modelData;
        set
        {
            (value as Tensor)?.DetachFromDisposeScope();
            _modelData = value;
        }
    }

    /// <summary>Disposes the hidden state, the mask and <see cref="ModelData"/>.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the tensors.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        _hidden.Dispose();
        AttentionMask.Dispose();
        ModelData?.Dispose();
    }
}
