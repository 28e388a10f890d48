using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// A bounded seeded sample of (X, Y, target) rows kept while a fit streams its batches, used only to report how well
/// a transform reproduces the removed blocks: mean cos(Y + X·T, target) and ‖X·T − Z‖/‖Z‖ on the sample.
/// Its size is fixed by the row cap, whatever the number of calibration tokens.
/// </summary>
internal sealed class DiagnosticSample : IDisposable
{
    /// <summary>Rows per evaluation batch (its float64 temporaries count against the fit's memory budget).</summary>
    internal const int EvaluationBatch = 1024;
    private const int SeedSalt = 0x5EED; // decorrelates the sample from the optimiser's row subsample
    private readonly TokenRowStore? _rows;

    /// <summary>Creates a sample of at most <paramref name="maxRows"/> rows (0 disables it).</summary>
    public DiagnosticSample(int hiddenSize, int maxRows, long memoryBudgetBytes, int seed)
    {
        if (maxRows > 0) _rows = new TokenRowStore([hiddenSize, hiddenSize, hiddenSize], maxRows, memoryBudgetBytes, seed ^ SeedSalt);
    }

    /// <summary>RAM the sample needs when it is full: three float32 rows of width d per sampled token.</summary>
    public static long BytesFor(int hiddenSize, int maxRows) => 3L * hiddenSize * sizeof(float) * maxRows;

    /// <summary>Rows in the sample.</summary>
    public long Rows => _rows?.RowsStored ?? 0;

    /// <summary>Offers a batch (<c>[N, d]</c> each).</summary>
    public void Add(Tensor x, Tensor y, Tensor target) => _rows?.Add(x, y, target);

    /// <summary>
    /// Mean cosine of Y + X·T with the target and the relative residual ‖X·T − Z‖/‖Z‖ over the sample, in float64;
    /// <paramref name="transform"/> null means identity. Both null when the sample is empty.
    /// </summary>
    public (double? Cosine, double? RelativeResidual) Evaluate(Tensor? transform, Device device)
    {
        if (_rows is null || _rows.RowsStored == 0) return (null, null);
        using var scope = NewDisposeScope();
        var t = transform?.to(ScalarType.Float64, device); // [d, d]
        double cosineSum = 0, residualSquared = 0, targetSquared = 0;
        foreach (var batch in _rows.Batches(EvaluationBatch, device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
                var x = batch[0].to(ScalarType.Float64); // [n, d]
                var y = batch[1].to(ScalarType.Float64); // [n, d]
                var target = batch[2].to(ScalarType.Float64); // [n, d]
                var mapped = t is null ? x : x.mm(t); // X·T, [n, d]
                var z = target - y; // [n, d]
                cosineSum += nn.functional.cosine_similarity(HeldScalars.Sum(y, mapped), target, dim: 1, eps: 1e-12).sum().item<double>();
                residualSquared += HeldScalars.Square(mapped - z).sum().item<double>();
                targetSquared += HeldScalars.Square(z).sum().item<double>();
            }
            finally { TokenRowStore.DisposeAll(batch); }
        }
        double? relative = targetSquared > 0 ? Math.Sqrt(residualSquared / targetSquared) : null;
        return (cosineSum / _rows.RowsStored, relative);
    }

    /// <summary>Frees the sample.</summary>
    public void Dispose() => _rows?.Dispose();
}
