using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Cli.Commands;

/// <summary>Maps the CLI's strategy names to the library's selector and estimator instances.</summary>
internal static class Strategies
{
    /// <summary>The <c>--selector</c> names.</summary>
    public static readonly string[] SelectorNames = ["angular", "cosine", "bi", "fixed", "replacement-aware"];

    /// <summary>The <c>--estimator</c> names.</summary>
    public static readonly string[] EstimatorNames = ["lstsq", "diag", "orthonormal", "cosine", "identity"];

    /// <summary>The selector called <paramref name="name"/>; <c>fixed</c> removes <c>[start, start + n)</c>.</summary>
    public static ILayerSelector Selector(string name, int? fixedStart, int blocksPerCut) => name switch
    {
        "angular" => new AngularDistanceSelector(),
        "cosine" => new AngularDistanceSelector(DistanceMetric.Cosine),
        "bi" => new BlockInfluenceSelector(),
        "fixed" => new FixedCutSelector(fixedStart ?? throw new ArgumentException("--selector fixed needs --start S."), blocksPerCut),
        "replacement-aware" => new ReplacementAwareSelector(),
        _ => throw new ArgumentException($"Unknown selector '{name}'; expected one of {string.Join(", ", SelectorNames)}."),
    };

    /// <summary>The estimator called <paramref name="name"/> with its settings.</summary>
    public static ITransformEstimator Estimator(string name, double ridge = 0, bool allowUnderdetermined = false, CosineOptions? cosine = null) => name switch
    {
        "lstsq" => new LeastSquaresEstimator(new LeastSquaresOptions(ridge, AllowUnderdetermined: allowUnderdetermined)),
        "diag" => new LeastSquaresEstimator(new LeastSquaresOptions(ridge, Structure: TransformStructure.Diagonal)),
        "orthonormal" => new LeastSquaresEstimator(new LeastSquaresOptions(Structure: TransformStructure.Orthonormal)),
        "cosine" => new CosineEstimator(cosine),
        "identity" => new IdentityEstimator(),
        _ => throw new ArgumentException($"Unknown estimator '{name}'; expected one of {string.Join(", ", EstimatorNames)}."),
    };
}
