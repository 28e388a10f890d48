using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Keys and values of the tokens a <see cref="DecoderModel"/> has already seen, per block, so that each new token costs
/// one incremental forward. Pass the same cache to successive <see cref="DecoderModel.Forward"/> calls with only the new
/// tokens and their mask; the cache remembers the mask of the past tokens (padding stays masked).
/// Owns its tensors; dispose it when done. Valid for one model and one batch; do not remove blocks while it is in use.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly List<(Tensor Key, Tensor Value)?> _layers = [];
    private Tensor? _mask; // [B, Tpast] int64

    /// <summary>Number of cached positions (past tokens, padding included).</summary>
    public int Length => _mask is null ? 0 : (int)_mask.shape[1];

    /// <summary>Batch size the cache was filled with; 0 while empty.</summary>
    public int BatchSize => _mask is null ? 0 : (int)_mask.shape[0];

    /// <summary>Mask of the cached positions <c>[B, Tpast]</c>, null while empty.</summary>
    internal Tensor? Mask => _mask;

    /// <summary>Records the mask of all positions (past + new) at the start of a forward; <c>[B, Tpast + T]</c>, copied.</summary>
    internal void SetMask(Tensor fullMask)
    {
        var copy = fullMask.detach().clone().DetachFromDisposeScope();
        _mask?.Dispose();
        _mask = copy;
    }

    /// <summary>
    /// Appends one block's new keys and values <c>[B, Hkv, T, hd]</c> and returns all of them
    /// <c>[B, Hkv, Tpast + T, hd]</c> (owned by the cache: do not dispose).
    /// </summary>
    internal (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        while (_layers.Count <= layer) _layers.Add(null);
        Tensor k, v;
        if (_layers[layer] is { } old)
        {
            k = cat([old.Key, key], 2).DetachFromDisposeScope();
            v = cat([old.Value, value], 2).DetachFromDisposeScope();
            old.Key.Dispose();
            old.Value.Dispose();
        }
        else
        {
            k = key.detach().clone().DetachFromDisposeScope();
            v = value.detach().clone().DetachFromDisposeScope();
        }
        _layers[layer] = (k, v);
        return (k, v);
    }

    /// <summary>Disposes every cached tensor and empties the cache.</summary>
    public void Dispose()
    {
        foreach (var entry in _layers)
        {
            entry?.Key.Dispose();
            entry?.Value.Dispose();
        }
        _layers.Clear();
        _mask?.Dispose();
        _mask = null;
    }
}
