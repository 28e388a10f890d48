using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// The paper's gradient estimator (§2.3): minimises the cosine distance between the replaced and the original
/// block output over stored token rows — by default with full-batch L-BFGS until the loss stops falling
/// (<see cref="CosineOptimizer.Lbfgs"/>), or with mini-batch Adam and a schedule (<see cref="CosineOptimizer.Adam"/>;
/// <see cref="CosineOptions.Paper"/> for the paper's exact setting). Rows are kept for valid tokens only, capped by a seeded uniform
/// subsample, and spill to a temporary file beyond the memory budget (docs/method.md, "Cosine memory"). See docs/estimators.md.
/// </summary>
public sealed class CosineEstimator : ITransformEstimator
{
    /// <summary>Creates the estimator.</summary>
    /// <param name="options">Options; <c>new CosineOptions()</c> (L-BFGS on Eq. 8 from the identity, least-squares scale) when null.</param>
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
    /// <remarks>Adam's settings (learning rate, epochs, schedule, warm-up, minimum steps) appear only when Adam runs.</remarks>
    public IReadOnlyDictionary<string, object?> Settings
    {
        get
        {
            var settings = new Dictionary<string, object?>
            {
                ["loss"] = Options.Loss.ToString(),
                ["optimizer"] = Options.Optimizer.ToString(),
                ["least_squares_scale"] = Options.LeastSquaresScale,
                ["batch_size"] = Options.BatchSize,
                ["steps"] = Options.Steps,
                ["init"] = Options.Init.ToString(),
                ["max_rows"] = Options.MaxRows,
                ["diagnostic_rows"] = Options.DiagnosticRows,
            };
            if (Options.Optimizer == CosineOptimizer.Lbfgs)
            {
                settings["tolerance"] = Options.Tolerance;
                settings["max_iterations"] = Options.Steps ?? CosineOptions.DefaultLbfgsIterations;
            }
            else
            {
                settings["learning_rate"] = Options.LearningRate;
                settings["epochs"] = Options.Epochs;
                settings["schedule"] = Options.Schedule.ToString();
                settings["warmup_fraction"] = Options.WarmupFraction;
                settings["min_steps"] = Options.MinSteps;
            }
            return settings;
        }
    }

    /// <inheritdoc />
    /// <exception cref="InsufficientMemoryBudgetException">L-BFGS (the default) and <see cref="EstimationContext.MemoryBudgetBytes"/> is below its
    /// least working set at <paramref name="hiddenSize"/> (3 float32 correction pairs, the search's d×d state and one batch; docs/estimators.md, "L-BFGS memory").</exception>
    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        return new CosineFit(cut, hiddenSize, Options, context);
    }
}
