using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// The paper's gradient estimator (§2.3): minimises the cosine distance between the replaced and the original
/// block output with Adam over stored token rows, for a number of steps that grows with the data and never falls
/// below <see cref="CosineOptions.MinSteps"/> (<see cref="CosineOptions.Paper"/> for the paper's exact setting). Rows are kept for valid tokens only, capped by a seeded uniform
/// subsample, and spill to a temporary file beyond the memory budget (docs/method.md, "Cosine memory"). See docs/estimators.md.
/// </summary>
public sealed class CosineEstimator : ITransformEstimator
{
    /// <summary>Creates the estimator.</summary>
    /// <param name="options">Options; <c>new CosineOptions()</c> (the converging schedule) when null.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public CosineEstimator(CosineOptions? options = null)
    {
        TorchRuntime.EnsureLoaded();
        Options = options ?? new CosineOptions();
        Options.Validate();
    }

    /// <summary>The options in use.</summary>
    public CosineOptions Options { get; }

    /// <inheritdoc />
    public string Name => "cosine";

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?>
    {
        ["loss"] = Options.Loss.ToString(),
        ["learning_rate"] = Options.LearningRate,
        ["batch_size"] = Options.BatchSize,
        ["epochs"] = Options.Epochs,
        ["schedule"] = Options.Schedule.ToString(),
        ["warmup_fraction"] = Options.WarmupFraction,
        ["min_steps"] = Options.MinSteps,
        ["steps"] = Options.Steps,
        ["init"] = Options.Init.ToString(),
        ["max_rows"] = Options.MaxRows,
        ["diagnostic_rows"] = Options.DiagnosticRows,
    };

    /// <inheritdoc />
    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        return new CosineFit(cut, hiddenSize, Options, context);
    }
}
