namespace ReplaceMe.Core.Estimation;

/// <summary>Which cosine objective <see cref="CosineEstimator"/> minimises.</summary>
public enum CosineLoss
{
    /// <summary>Paper Eq. 8 (the reference default): mean(1 − cos(X·T, Z)) with Z = target − Y.</summary>
    Approximate,
    /// <summary>Paper Eq. 7: mean(1 − cos(Y + X·T, target)), the quantity the pruned model actually sees.</summary>
    Exact,
}

/// <summary>Starting point of the cosine optimisation.</summary>
public enum CosineInit
{
    /// <summary>T₀ = I (the reference's choice).</summary>
    Identity,
    /// <summary>T₀ = the least-squares solution on the same stored rows.</summary>
    LeastSquares,
}

/// <summary>The optimiser of <see cref="CosineEstimator"/>.</summary>
public enum CosineOptimizer
{
    /// <summary>
    /// Full-batch L-BFGS over every stored row, in coordinates whitened by the rows' weighted Gram matrix; stops when an
    /// iteration lowers the loss by less than <see cref="CosineOptions.Tolerance"/> (docs/estimators.md, "Cosine optimiser").
    /// </summary>
    Lbfgs,
    /// <summary>Mini-batch Adam with <see cref="CosineOptions.Schedule"/> (the paper's optimiser).</summary>
    Adam,
}

/// <summary>How the Adam learning rate of <see cref="CosineEstimator"/> changes over the optimiser steps.</summary>
public enum CosineSchedule
{
    /// <summary>The same learning rate at every step (the paper's and the reference code's choice).</summary>
    Constant,
    /// <summary>Linear warm-up from 0 over <see cref="CosineOptions.WarmupFraction"/> of the steps, then a cosine decay to 0.</summary>
    WarmupCosine,
}

/// <summary>
/// Options of <see cref="CosineEstimator"/>. The default is the paper's loss (Eq. 8) minimised by full-batch L-BFGS
/// (<see cref="CosineOptimizer.Lbfgs"/>), which converges from the identity on small and large calibration sets alike,
/// then T rescaled along its ray to the least-squares scale (<see cref="LeastSquaresScale"/>). With <see cref="CosineOptimizer.Adam"/>
/// the defaults are a peak learning rate of 1e-2, 5 % warm-up then cosine decay, over at least <see cref="MinSteps"/>
/// steps (more when the stored rows fill more batches: <see cref="StepsFor"/>). <see cref="Paper"/> is the paper's
/// setting (Adam at a constant lr 1e-4, 10 epochs of 1024-row batches), which on a few thousand rows makes too few steps
/// to move T far from its start (docs/estimators.md, "Cosine optimiser").
/// </summary>
/// <param name="Loss">Objective: Eq. 8 (<see cref="CosineLoss.Approximate"/>, the paper's default, two stored rows per
/// token) or Eq. 7 (<see cref="CosineLoss.Exact"/>, three).</param>
/// <param name="LearningRate">Adam learning rate (&gt; 0; Adam only): the peak of the schedule. T is dimensionless (X·T is compared
/// with Z by angle only), and Adam's step is about the learning rate per entry whatever the activations' scale, so the
/// rate is measured against T's own entries (1 on the identity's diagonal).</param>
/// <param name="BatchSize">Token rows per Adam step, or per chunk of an L-BFGS pass over all rows (memory only; ≥ 1); all rows when fewer are stored.</param>
/// <param name="Epochs">Passes over the stored rows (≥ 1; Adam only); with <see cref="MinSteps"/> it sets the number of steps.</param>
/// <param name="Init">Starting point.</param>
/// <param name="MaxRows">
/// Most token rows kept for the optimisation (uniform seeded subsample beyond it); null means
/// min(4·d², 262 144), enough rows for a d×d fit without storing every calibration token.
/// </param>
/// <param name="DiagnosticRows">Rows kept (seeded uniform sample) to report cosine before/after; 0 skips it.</param>
public sealed record CosineOptions(
    CosineLoss Loss = CosineLoss.Approximate,
    double LearningRate = 1e-2,
    int BatchSize = 1024,
    int Epochs = 10,
    CosineInit Init = CosineInit.Identity,
    long? MaxRows = null,
    int DiagnosticRows = 4096)
{
    private static readonly CosineOptions Defaults = new();

    /// <summary>Upper bound of the default row cap.</summary>
    public const long DefaultMaxRowsBound = 262_144;

    /// <summary>Most points of <see cref="EstimatorReport.LossCurve"/>: the curve averages the loss over equal runs of steps.</summary>
    public const int LossCurvePoints = 20;

    /// <summary>
    /// The paper's setting (§2.3 and its reference code): the approximate loss (Eq. 8), Adam at a constant lr 1e-4,
    /// 1024-row batches, 10 epochs, identity start, no minimum number of steps, T not rescaled.
    /// </summary>
    public static CosineOptions Paper { get; } = new(LearningRate: 1e-4) { Optimizer = CosineOptimizer.Adam, LeastSquaresScale = false, Schedule = CosineSchedule.Constant, MinSteps = 0, WarmupFraction = 0 };

    /// <summary>Most L-BFGS iterations when <see cref="Steps"/> is not set.</summary>
    public const int DefaultLbfgsIterations = 300;

    /// <summary>The optimiser; <see cref="CosineOptimizer.Lbfgs"/> by default. <see cref="LearningRate"/>, <see cref="Epochs"/>,
    /// <see cref="Schedule"/>, <see cref="WarmupFraction"/> and <see cref="MinSteps"/> are Adam's and must keep their defaults with L-BFGS.</summary>
    public CosineOptimizer Optimizer { get; init; } = CosineOptimizer.Lbfgs;

    /// <summary>
    /// After the optimisation, multiply T by the factor α that minimises ‖α·X·T − Z‖² over the stored rows (Z = target − Y;
    /// one pass, closed form α = Σ⟨X·T, Z⟩ / Σ‖X·T‖²). Eq. 8 does not depend on T's scale, so its optima form a ray
    /// and the optimiser's scale is an accident of the start and the path; this picks the point of the ray closest to
    /// the targets. With Eq. 7 it changes the objective's value (documented, not hidden). Default true; false in <see cref="Paper"/>.
    /// </summary>
    public bool LeastSquaresScale { get; init; } = true;

    /// <summary>L-BFGS stops when an iteration lowers the mean loss (1 − cos, between 0 and 2) by less than this (&gt; 0).</summary>
    public double Tolerance { get; init; } = 1e-6;

    /// <summary>Learning-rate schedule over the Adam steps (Adam only).</summary>
    public CosineSchedule Schedule { get; init; } = CosineSchedule.WarmupCosine;

    /// <summary>(Adam only) Share of the steps spent warming the learning rate up from 0 (0 ≤ value &lt; 1; <see cref="CosineSchedule.WarmupCosine"/> only).</summary>
    public double WarmupFraction { get; init; } = 0.05;

    /// <summary>Fewest Adam steps (≥ 0; Adam only): small calibration sets get more epochs instead of fewer steps.</summary>
    public int MinSteps { get; init; } = 1000;

    /// <summary>Exact number of Adam steps, or most L-BFGS iterations (≥ 1), instead of <see cref="StepsFor"/>'s rule; null uses the rule.</summary>
    public int? Steps { get; init; }

    /// <summary>The row cap used for hidden size <paramref name="hiddenSize"/>.</summary>
    public long RowCapFor(int hiddenSize) => MaxRows ?? Math.Min(4L * hiddenSize * hiddenSize, DefaultMaxRowsBound);

    /// <summary>
    /// Optimiser steps for <paramref name="rows"/> stored rows: <see cref="Steps"/> when set; else for Adam
    /// max(<see cref="Epochs"/> · ⌈rows / <see cref="BatchSize"/>⌉, <see cref="MinSteps"/>), for L-BFGS at most
    /// <see cref="DefaultLbfgsIterations"/> iterations (fewer when it converges).
    /// </summary>
    public int StepsFor(long rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        if (Steps is int fixedSteps) return fixedSteps;
        if (Optimizer == CosineOptimizer.Lbfgs) return DefaultLbfgsIterations;
        long perEpoch = (rows + BatchSize - 1) / BatchSize;
        return (int)Math.Min(int.MaxValue, Math.Max(Epochs * perEpoch, MinSteps));
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based) of <paramref name="steps"/>.</summary>
    public double LearningRateAt(int step, int steps)
    {
        if (Schedule == CosineSchedule.Constant) return LearningRate;
        int warmup = (int)Math.Ceiling(WarmupFraction * steps);
        if (step < warmup) return LearningRate * (step + 1) / warmup;
        double progress = steps - warmup <= 1 ? 0 : (step - warmup) / (double)(steps - warmup - 1); // 0 → 1
        return LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentException">The offending option is named.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Loss)) throw new ArgumentException($"Unknown cosine loss {Loss}.", nameof(Loss));
        if (!Enum.IsDefined(Init)) throw new ArgumentException($"Unknown initialisation {Init}.", nameof(Init));
        if (!Enum.IsDefined(Schedule)) throw new ArgumentException($"Unknown learning-rate schedule {Schedule}.", nameof(Schedule));
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            throw new ArgumentException($"LearningRate must be a finite number > 0; got {LearningRate}.", nameof(LearningRate));
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be ≥ 1; got {BatchSize}.", nameof(BatchSize));
        if (Epochs < 1) throw new ArgumentException($"Epochs must be ≥ 1; got {Epochs}.", nameof(Epochs));
        if (MaxRows is < 1) throw new ArgumentException($"MaxRows must be ≥ 1 when given; got {MaxRows}.", nameof(MaxRows));
        if (DiagnosticRows < 0) throw new ArgumentException($"DiagnosticRows must be ≥ 0; got {DiagnosticRows}.", nameof(DiagnosticRows));
        if (MinSteps < 0) throw new ArgumentException($"MinSteps must be ≥ 0; got {MinSteps}.", nameof(MinSteps));
        if (Steps is < 1) throw new ArgumentException($"Steps must be ≥ 1 when given; got {Steps}.", nameof(Steps));
        if (!double.IsFinite(WarmupFraction) || WarmupFraction < 0 || WarmupFraction >= 1)
            throw new ArgumentException($"WarmupFraction must be in [0, 1); got {WarmupFraction}.", nameof(WarmupFraction));
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentException($"Unknown optimiser {Optimizer}.", nameof(Optimizer));
        if (!double.IsFinite(Tolerance) || Tolerance <= 0)
            throw new ArgumentException($"Tolerance must be a finite number > 0; got {Tolerance}.", nameof(Tolerance));
        if (Optimizer == CosineOptimizer.Lbfgs)
        {
            // Adam's settings have no meaning for L-BFGS: refuse them rather than ignore them.
            var adamOnly = new (string Name, bool Changed)[]
            {
                (nameof(LearningRate), LearningRate != Defaults.LearningRate),
                (nameof(Epochs), Epochs != Defaults.Epochs),
                (nameof(Schedule), Schedule != Defaults.Schedule),
                (nameof(WarmupFraction), WarmupFraction != Defaults.WarmupFraction),
                (nameof(MinSteps), MinSteps != Defaults.MinSteps),
            };
            foreach (var (name, changed) in adamOnly)
                if (changed)
                    throw new ArgumentException($"{name} is an Adam setting; set Optimizer = CosineOptimizer.Adam to use it (L-BFGS has no learning rate or epochs).", name);
        }
    }
}
