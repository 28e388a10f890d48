namespace ReplaceMe.Core.Selection;

/// <summary>How two residual-stream states are compared.</summary>
public enum DistanceMetric
{
    /// <summary>arccos(cos θ)/π ∈ [0, 1] (the reference code's and UIDL's angular distance).</summary>
    Angular,
    /// <summary>1 − cos θ ∈ [0, 2] (the paper text's "cosine distance").</summary>
    Cosine,
}

/// <summary>Which token positions enter a distance.</summary>
public enum DistanceTokens
{
    /// <summary>Only the last valid token of each sequence (the paper's protocol).</summary>
    LastToken,
    /// <summary>Every valid token.</summary>
    AllTokens,
}

/// <summary>
/// Mean distance, over calibration sequences, between the output of block <c>s − 1</c> and the output of block
/// <c>s + n − 1</c> for every candidate cut <c>[s, s + n)</c> with 1 ≤ s and s + n ≤ block count, for n = 1..MaxLength.
/// Outputs are pre-final-norm. This is the paper's heatmap (start × n).
/// </summary>
public sealed class DistanceProfile
{
    private readonly double[][] _byLength; // [n - 1][s - 1], NaN where the cut does not fit

    /// <summary>Creates a profile from measured values.</summary>
    /// <param name="blockCount">Blocks in the measured model.</param>
    /// <param name="metric">Metric used.</param>
    /// <param name="tokens">Positions used.</param>
    /// <param name="byLength"><c>byLength[n-1][s-1]</c> = distance of cut <c>[s, s+n)</c>; length blockCount − 1 per row.</param>
    /// <param name="sequences">Number of calibration sequences measured.</param>
    public DistanceProfile(int blockCount, DistanceMetric metric, DistanceTokens tokens, double[][] byLength, long sequences)
    {
        ArgumentNullException.ThrowIfNull(byLength);
        if (byLength.Length == 0 || byLength.Length >= blockCount)
            throw new ArgumentException($"Expected 1..{blockCount - 1} rows (one per n), got {byLength.Length}.", nameof(byLength));
        foreach (var row in byLength)
            if (row.Length != blockCount - 1)
                throw new ArgumentException($"Every row needs {blockCount - 1} entries (one per start 1..{blockCount - 1}).", nameof(byLength));
        BlockCount = blockCount;
        Metric = metric;
        Tokens = tokens;
        _byLength = byLength;
        Sequences = sequences;
    }

    /// <summary>Blocks in the measured model.</summary>
    public int BlockCount { get; }

    /// <summary>Largest n measured.</summary>
    public int MaxLength => _byLength.Length;

    /// <summary>Metric used.</summary>
    public DistanceMetric Metric { get; }

    /// <summary>Positions used.</summary>
    public DistanceTokens Tokens { get; }

    /// <summary>Calibration sequences measured.</summary>
    public long Sequences { get; }

    /// <summary>Distance for cut <c>[start, start + length)</c>; NaN when that cut does not fit the model.</summary>
    public double this[int start, int length]
    {
        get
        {
            if (length < 1 || length > MaxLength) throw new ArgumentOutOfRangeException(nameof(length), $"n must be in 1..{MaxLength}.");
            if (start < 1 || start > BlockCount - 1) throw new ArgumentOutOfRangeException(nameof(start), $"Start must be in 1..{BlockCount - 1}.");
            return _byLength[length - 1][start - 1];
        }
    }

    /// <summary>Distances for cuts of length n, indexed by start − 1 (NaN where the cut does not fit).</summary>
    public IReadOnlyList<double> ForLength(int length) => length >= 1 && length <= MaxLength
        ? _byLength[length - 1]
        : throw new ArgumentOutOfRangeException(nameof(length), $"n must be in 1..{MaxLength}.");
}
