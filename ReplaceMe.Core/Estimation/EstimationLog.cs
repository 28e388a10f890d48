using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Core.Estimation;

/// <summary>Source-generated log messages of the estimators.</summary>
internal static partial class EstimationLog
{
    [LoggerMessage(EventId = 401, Level = LogLevel.Information,
        Message = "Least squares for cut {Cut}: {Tokens} tokens, condition ≈ {Condition:G3}, damping {Damping:G3}, pseudo-inverse {PseudoInverse}, relative residual {Residual:G4}")]
    public static partial void LeastSquaresSolved(ILogger logger, BlockCut cut, long tokens, double condition, double damping, bool pseudoInverse, double residual);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning,
        Message = "Cut {Cut}: the Cholesky factorisation needed damping {Damping:G3} (mean diagonal {MeanDiagonal:G3}); XᵀX is close to singular")]
    public static partial void Damped(ILogger logger, BlockCut cut, double damping, double meanDiagonal);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning,
        Message = "Cut {Cut}: Cholesky failed even with the largest damping; used the pseudo-inverse")]
    public static partial void PseudoInverse(ILogger logger, BlockCut cut);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning,
        Message = "Cut {Cut}: only {Tokens} valid tokens for hidden size {HiddenSize}; the fit is underdetermined, adding ridge {Ridge:G3}")]
    public static partial void Underdetermined(ILogger logger, BlockCut cut, long tokens, int hiddenSize, double ridge);

    [LoggerMessage(EventId = 405, Level = LogLevel.Debug,
        Message = "Cosine fit for cut {Cut}: step {Step}/{Steps}, learning rate {LearningRate:G3}, mean loss {Loss:G6} over the last {Window} steps")]
    public static partial void CosineSteps(ILogger logger, BlockCut cut, int step, int steps, double learningRate, double loss, int window);

    [LoggerMessage(EventId = 406, Level = LogLevel.Information,
        Message = "Cosine fit for cut {Cut}: kept {Rows} of {Seen} token rows, {Spilled} bytes spilled to disk; {Steps} Adam steps ({Schedule}, peak lr {LearningRate:G3}, batch {Batch})")]
    public static partial void CosineRows(ILogger logger, BlockCut cut, long rows, long seen, long spilled, int steps, CosineSchedule schedule, double learningRate, long batch);
}
