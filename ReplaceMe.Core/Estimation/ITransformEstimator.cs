using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// Estimates the linear map T (<c>[d, d]</c>) that replaces a cut, from activations streamed at valid
/// (unpadded) token positions. Notation (docs/method.md, "Notation"; i = cut start − 1, n = cut length):
/// X = M_i (MLP output of block i), Y = L_i − M_i (attention residual of block i), target = L_{i+n}
/// (output of the last removed block, pre-final-norm), Z = target − Y. The replaced model computes
/// <c>Y + X·T</c> where it used to compute the target.
/// </summary>
public interface ITransformEstimator
{
    /// <summary>Short name used in reports and on the command line ("lstsq", "cosine", "identity").</summary>
    string Name { get; }

    /// <summary>Starts a fit for one cut. The caller feeds batches with <see cref="ITransformFit.Accumulate"/>, then calls <see cref="ITransformFit.Complete"/>.</summary>
    ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context);

    /// <summary>This estimator's settings, recorded in <c>replaceme.json</c> (snake_case keys, JSON-serializable values).</summary>
    IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?>();
}

/// <summary>One fit in progress. Not thread-safe; keep all calls on the thread that runs the model.</summary>
public interface ITransformFit : IDisposable
{
    /// <summary>Adds one batch of valid-token rows: each tensor <c>[N, d]</c> on the model's device, any float dtype.</summary>
    /// <param name="mlpOutput">X = M_i.</param>
    /// <param name="attentionResidual">Y = L_i − M_i.</param>
    /// <param name="target">L_{i+n}.</param>
    void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target);

    /// <summary>Solves for T with everything accumulated so far.</summary>
    /// <exception cref="PruningException">Too few tokens, non-finite statistics or a non-finite solution.</exception>
    TransformEstimate Complete(CancellationToken cancellationToken = default);
}

/// <summary>What an estimator may use while fitting.</summary>
/// <param name="Device">Device for the solve (the model's device by default).</param>
/// <param name="Seed">Seed for anything random (token subsampling, batch order).</param>
/// <param name="MemoryBudgetBytes">RAM budget for stored token rows before spilling to a temporary file.</param>
/// <param name="Logger">Log sink, or null.</param>
/// <param name="Progress">Progress sink, or null.</param>
public sealed record EstimationContext(
    Device? Device = null,
    int Seed = 0,
    long MemoryBudgetBytes = 2L << 30,
    ILogger? Logger = null,
    IProgress<PruningProgress>? Progress = null);

/// <summary>The result of a fit.</summary>
/// <param name="Transform">T, <c>[d, d]</c> float64 on CPU, applied as <c>X·T</c>; null means identity (plain removal).</param>
/// <param name="Report">Figures describing the fit.</param>
public sealed record TransformEstimate(Tensor? Transform, EstimatorReport Report);

/// <summary>Quality and cost figures of a fit (null where an estimator does not compute one).</summary>
/// <param name="Estimator">Estimator name.</param>
/// <param name="Tokens">Valid tokens the fit saw.</param>
/// <param name="Elapsed">Wall time of the fit (accumulation and solve).</param>
/// <param name="RelativeResidual">‖X·T − Z‖_F / ‖Z‖_F on the accumulated tokens.</param>
/// <param name="ConditionEstimate">Estimated condition number of XᵀX (least squares).</param>
/// <param name="Damping">Ridge actually added to XᵀX's diagonal (user α plus any stabilising damping).</param>
/// <param name="UsedPseudoInverse">True when the Cholesky solve failed and the pseudo-inverse was used.</param>
/// <param name="CosineBefore">Mean cos(Y + X, target) over tokens (identity, i.e. plain removal).</param>
/// <param name="CosineAfter">Mean cos(Y + X·T, target) over tokens.</param>
/// <param name="LossCurve">Loss of gradient estimators over the run: the cosine estimator averages its mini-batch loss over equal windows of Adam steps (at most <see cref="CosineOptions.LossCurvePoints"/> points).</param>
/// <param name="Notes">Anything else worth reporting (e.g. subsampling, spill to disk).</param>
public sealed record EstimatorReport(
    string Estimator,
    long Tokens,
    TimeSpan Elapsed,
    double? RelativeResidual = null,
    double? ConditionEstimate = null,
    double? Damping = null,
    bool UsedPseudoInverse = false,
    double? CosineBefore = null,
    double? CosineAfter = null,
    IReadOnlyList<double>? LossCurve = null,
    IReadOnlyList<string>? Notes = null);
