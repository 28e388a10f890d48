using System.Collections;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>
/// Calibration or evaluation batches with one owner: disposing the list disposes every batch, so
/// <c>using var batches = CalibrationBatches.Tokenize(…);</c> releases all their tensors.
/// </summary>
public sealed class TokenBatchList : IReadOnlyList<TokenBatch>, IDisposable
{
    private readonly List<TokenBatch> _batches;

    /// <summary>Takes ownership of <paramref name="batches"/>.</summary>
    public TokenBatchList(IEnumerable<TokenBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        _batches = [.. batches];
    }

    /// <inheritdoc/>
    public TokenBatch this[int index] => _batches[index];

    /// <inheritdoc/>
    public int Count => _batches.Count;

    /// <inheritdoc/>
    public IEnumerator<TokenBatch> GetEnumerator() => _batches.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every batch.</summary>
    public void Dispose()
    {
        foreach (var batch in _batches) batch.Dispose();
        _batches.Clear();
    }
}
