using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Core.Pruning;

/// <summary>Turns <see cref="PruningOptions"/> into the selector and estimator instances the pipeline wires.</summary>
internal static class PruningComponents
{
    public static ITransformEstimator Estimator(PruningOptions options) => options.CustomEstimator ?? options.Estimator switch
    {
        EstimatorKind.LeastSquares => new LeastSquaresEstimator(new LeastSquaresOptions(options.Ridge, AllowUnderdetermined: options.AllowUnderdetermined)),
        EstimatorKind.Cosine => new CosineEstimator(options.Cosine),
        EstimatorKind.Identity => new IdentityEstimator(),
        _ => throw new ArgumentException($"Unknown estimator {options.Estimator}.", nameof(options)),
    };

    public static ILayerSelector Selector(PruningOptions options, int blocksPerCut, ITransformEstimator estimator) => options.CustomSelector ?? options.Selector switch
    {
        SelectorKind.Distance => new AngularDistanceSelector(options.DistanceMetric),
        SelectorKind.BlockInfluence => new BlockInfluenceSelector(),
        SelectorKind.Fixed => new FixedCutSelector(options.FixedStart!.Value, blocksPerCut),
        SelectorKind.ReplacementAware => new ReplacementAwareSelector(estimator, options.ReplacementAwareTopK),
        _ => throw new ArgumentException($"Unknown selector {options.Selector}.", nameof(options)),
    };

    /// <summary>True when the selector scores candidates on held-out batches.</summary>
    public static bool NeedsHeldOut(PruningOptions options) =>
        options.CustomSelector is ReplacementAwareSelector || (options.CustomSelector is null && options.Selector == SelectorKind.ReplacementAware);
}
