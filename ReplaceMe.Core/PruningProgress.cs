namespace ReplaceMe.Core;

/// <summary>A progress report of long-running pruning and evaluation work.</summary>
/// <param name="Stage">What is running: "calibration", "profile", "estimate", "surgery", "evaluate", …</param>
/// <param name="Fraction">Completed fraction of the stage in [0, 1], or null if unknown.</param>
/// <param name="Block">Block or cut start concerned, if any.</param>
/// <param name="Tokens">Tokens processed so far in the stage.</param>
/// <param name="Loss">Current loss (cosine estimator epochs), if any.</param>
/// <param name="Message">Short human-readable detail.</param>
public sealed record PruningProgress(string Stage, double? Fraction = null, int? Block = null, long Tokens = 0, double? Loss = null, string? Message = null);
