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

/// <summary>Options of <see cref="CosineEstimator"/>. Defaults follow the paper: Adam, lr 1e-4, 1024-row batches, 10 epochs.</summary>
/// <param name="Loss">Objective (Eq. 8 or Eq. 7).</param>
/// <param name="LearningRate">Adam learning rate (&gt; 0).</param>
/// <param name="BatchSize">Token rows per step (≥ 1).</param>
/// <param name="Epochs">Passes over the stored rows (≥ 1).</param>
/// <param name="Init">Starting point.</param>
/// <param name="MaxRows">
/// Most token rows kept for the optimisation (uniform seeded subsample beyond it); null means
/// min(4·d², 262 144), enough rows for a d×d fit without storing every calibration token.
/// </param>
/// <param name="DiagnosticRows">Rows kept (seeded uniform sample) to report cosine before/after; 0 skips it.</param>
public sealed record CosineOptions(
    CosineLoss Loss = CosineLoss.Approximate,
    double LearningRate = 1e-4,
    int BatchSize = 1024,
    int Epochs = 10,
    CosineInit Init = CosineInit.Identity,
    long? MaxRows = null,
    int DiagnosticRows = 4096)
{
    /// <summary>Upper bound of the default row cap.</summary>
    public const long DefaultMaxRowsBound = 262_144;

    /// <summary>The row cap used for hidden size <paramref name="hiddenSize"/>.</summary>
    public long RowCapFor(int hiddenSize) => MaxRows ?? Math.Min(4L * hiddenSize * hiddenSize, DefaultMaxRowsBound);

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentException">The offending option is named.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Loss)) throw new ArgumentException($"Unknown cosine loss {Loss}.", nameof(Loss));
        if (!Enum.IsDefined(Init)) throw new ArgumentException($"Unknown initialisation {Init}.", nameof(Init));
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            throw new ArgumentException($"LearningRate must be a finite number > 0; got {LearningRate}.", nameof(LearningRate));
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be ≥ 1; got {BatchSize}.", nameof(BatchSize));
        if (Epochs < 1) throw new ArgumentException($"Epochs must be ≥ 1; got {Epochs}.", nameof(Epochs));
        if (MaxRows is < 1) throw new ArgumentException($"MaxRows must be ≥ 1 when given; got {MaxRows}.", nameof(MaxRows));
        if (DiagnosticRows < 0) throw new ArgumentException($"DiagnosticRows must be ≥ 0; got {DiagnosticRows}.", nameof(DiagnosticRows));
    }
}
