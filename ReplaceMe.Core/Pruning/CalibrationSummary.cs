using ReplaceMe.Core.Calibration;

namespace ReplaceMe.Core.Pruning;

/// <summary>What the calibration data was.</summary>
/// <param name="Source">Free text from <see cref="PruningOptions.CalibrationSource"/>.</param>
/// <param name="Fingerprint">SHA-256 of the token ids (<see cref="CalibrationBatches.Fingerprint"/>).</param>
/// <param name="Sequences">Number of sequences.</param>
/// <param name="Tokens">Number of valid tokens.</param>
/// <param name="HeldOutSequences">Sequences held out for selection scoring (not used to fit T).</param>
public sealed record CalibrationSummary(string Source, string Fingerprint, int Sequences, long Tokens, int HeldOutSequences)
{
    /// <summary>Free text from <see cref="PruningOptions.CalibrationSource"/>.</summary>
    public string Source { get; } = Source;

    /// <summary>SHA-256 of the token ids (<see cref="CalibrationBatches.Fingerprint"/>).</summary>
    public string Fingerprint { get; } = Fingerprint;

    /// <summary>Number of sequences.</summary>
    public int Sequences { get; } = Sequences;

    /// <summary>Number of valid tokens.</summary>
    public long Tokens { get; } = Tokens;

    /// <summary>Sequences held out for selection scoring (not used to fit T).</summary>
    public int HeldOutSequences { get; } = HeldOutSequences;
}
