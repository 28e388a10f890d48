using Microsoft.Extensions.Logging;

namespace ReplaceMe.Core.Pruning;

/// <summary>Source-generated log messages of the pruning pipeline.</summary>
internal static partial class PruningLog
{
    [LoggerMessage(EventId = 601, Level = LogLevel.Information,
        Message = "Pruning {Blocks}-block model: n = {N}, {Cuts} cut(s), selector {Selector}, estimator {Estimator}, {Batches} calibration batches ({Tokens} tokens), {HeldOut} held out")]
    public static partial void Start(ILogger logger, int blocks, int n, int cuts, string selector, string estimator, int batches, long tokens, int heldOut);

    [LoggerMessage(EventId = 602, Level = LogLevel.Information, Message = "Selected cut(s) {Cuts} (original indices): {Description}")]
    public static partial void Selected(ILogger logger, string cuts, string description);

    [LoggerMessage(EventId = 603, Level = LogLevel.Information,
        Message = "Cut {Cut} (applied as {Applied}): {Estimator} on {Tokens} tokens in {Seconds:F1} s, relative residual {Residual}, cosine {Before} -> {After}")]
    public static partial void Estimated(ILogger logger, string cut, string applied, string estimator, long tokens, double seconds, string residual, string before, string after);

    [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "Pruned model has {Blocks} blocks; total {Seconds:F1} s, peak working set {PeakMiB} MiB")]
    public static partial void Done(ILogger logger, int blocks, double seconds, long peakMiB);

    [LoggerMessage(EventId = 606, Level = LogLevel.Information, Message = "Calibration forward work: {Passes:F2} forward-equivalents ({Detail})")]
    public static partial void Passes(ILogger logger, double passes, string detail);

    [LoggerMessage(EventId = 607, Level = LogLevel.Information, Message = "The first cut is fitted in a second pass: {Reason}")]
    public static partial void SecondPass(ILogger logger, string reason);

    [LoggerMessage(EventId = 640, Level = LogLevel.Information,
        Message = "Calibration passes run block-major: each block once over every batch; hidden states up to {BudgetMiB} MiB in RAM, then spilled to {SpillDirectory}")]
    public static partial void BlockMajor(ILogger logger, long budgetMiB, string spillDirectory);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "Saved pruned model to {Path}")]
    public static partial void Saved(ILogger logger, string path);
}
