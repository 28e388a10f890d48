using ReplaceMe.Core.Calibration;

namespace ReplaceMe.Core.Pruning;

/// <summary>What the calibration data was.</summary>
/// <param name="Source">Free text from <see cref="PruningOptions.CalibrationSource"/>.</param>
/// <param name="Fingerprint">SHA-256 of the token ids (<see cref="CalibrationBatches.Fingerprint"/>).</param>
/// <param name="Sequences">Number of sequences.</param>
/// <param name="Tokens">Number of valid tokens.</param>
/// <param name="HeldOutSequences">Sequences held out for selection scoring (not used to fit T).</param>
public sealed record CalibrationSummary(string Source, string Fingerprint, int Sequences, long Tokens, int HeldOutSequences);
