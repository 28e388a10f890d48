using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Modeling;
using System.Diagnostics;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Pruning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// One cosine fit: stores token rows (X, Z for Eq. 8; X, Y, target for Eq. 7), then runs Adam over seeded
/// shuffled mini-batches on the context's device.
/// </summary>
internal sealed class CosineFit : ITransformFit
{
    private const float CosineEpsilon = 1e-8f;
    private readonly BlockCut _cut;
    private readonly int _hiddenSize;
    private readonly CosineOptions _options;
    private readonly EstimationContext _context;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TokenRowStore _rows;
    private readonly DiagnosticSample _sample;
    private Device? _device;
    private bool _disposed;

    public CosineFit(BlockCut cut, int hiddenSize, CosineOptions options, EstimationContext context)
    {
        _cut = cut;
        _hiddenSize = hiddenSize;
        _options = options;
        _context = context;
        int[] widths = options.Loss == CosineLoss.Exact ? [hiddenSize, hiddenSize, hiddenSize] : [hiddenSize, hiddenSize];
        // One budget for everything this fit holds (docs/method.md, "Cosine memory"): the working memory of the
        // optimisation first, then the small diagnostic sample, and the stored rows get the rest (the remainder spills).
        long rowCap = options.RowCapFor(hiddenSize);
        WorkingBytes = WorkingBytesFor(hiddenSize, widths.Length, (int)Math.Min(options.BatchSize, rowCap));
        long left = Math.Max(0, context.MemoryBudgetBytes - WorkingBytes);
        long sampleBudget = Math.Min(left, DiagnosticSample.BytesFor(hiddenSize, options.DiagnosticRows));
        _sample = new DiagnosticSample(hiddenSize, options.DiagnosticRows, sampleBudget, context.Seed);
        _rows = new TokenRowStore(widths, rowCap, left - sampleBudget, context.Seed);
    }

    /// <summary>
    /// Bytes the optimisation needs besides the stored rows, counted against the budget: T, its gradient and Adam's two
    /// moments (float32), the least-squares start (float64 sums and solve), one batch buffer and the batch's activations
    /// and gradients, and the diagnostic evaluation's float64 batch.
    /// </summary>
    internal static long WorkingBytesFor(int hiddenSize, int matrices, int batchRows)
    {
        long d = hiddenSize, square = d * d;
        long optimiser = 6 * square * sizeof(float);               // T, grad, m, v, √v̂ and one temporary
        long start = 6 * square * sizeof(double);                  // XᵀX, XᵀZ, identity, factor, solution, temporary
        long batch = batchRows * d * sizeof(float) * (2L * matrices + 8); // buffer (+ device copy) and autograd's [n, d] tensors
        long diagnostics = DiagnosticSample.EvaluationBatch * d * sizeof(double) * 8; // x, y, target, X·T, Z, sums, squares
        return optimiser + start + batch + diagnostics;
    }

    /// <summary>Bytes of working memory counted against the budget before rows are stored (<see cref="WorkingBytesFor"/>).</summary>
    internal long WorkingBytes { get; }

    /// <summary>The row store (for tests and memory reports).</summary>
    internal TokenRowStore Rows => _rows;

    public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        FitInputs.Check(_cut, _hiddenSize, mlpOutput, attentionResidual, target);
        _device ??= _context.Device ?? mlpOutput.device;
        using var scope = NewDisposeScope();
        if (_options.Loss == CosineLoss.Exact) _rows.Add(mlpOutput, attentionResidual, target);
        else _rows.Add(mlpOutput, target.to(ScalarType.Float64).sub(attentionResidual.to(ScalarType.Float64))); // X, Z
        _sample.Add(mlpOutput, attentionResidual, target);
        _context.Progress?.Report(new PruningProgress("estimate", Block: _cut.Start, Tokens: _rows.RowsSeen));
    }

    public TransformEstimate Complete(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        FitInputs.RequireTokens(_cut, _rows.RowsSeen);
        var device = _device!;
        var logger = _context.Logger;
        int steps = _options.StepsFor(_rows.RowsStored);
        int batchSize = (int)Math.Min(_options.BatchSize, _rows.RowsStored);
        if (logger is not null)
            EstimationLog.CosineRows(logger, _cut, _rows.RowsStored, _rows.RowsSeen, _rows.SpilledBytes, steps, _options.Schedule, _options.LearningRate, batchSize);

        using var scope = NewDisposeScope();
        var start = _options.Init == CosineInit.LeastSquares
            ? LeastSquaresStart(device, batchSize)
            : eye(_hiddenSize, dtype: ScalarType.Float32, device: device); // [d, d]
        using var weight = new Parameter(start.to(ScalarType.Float32).contiguous(), requires_grad: true); // T, [d, d]
        using var adam = new AdamStep(weight, _options.LearningRate);
        // The loss curve averages the mini-batch loss (at T before each update) over equal windows of steps.
        int window = Math.Max(1, (steps + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints);
        var curve = new List<double>(CosineOptions.LossCurvePoints + 1);
        double windowSum = 0;
        long windowRows = 0;
        int step = 0;
        for (int epoch = 0; step < steps; epoch++)
        {
            foreach (var batch in _rows.Batches(batchSize, device, ShuffleSeed(epoch)))
            {
                try
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var inner = NewDisposeScope();
                    AdamStep.ZeroGrad(weight);
                    var loss = Loss(batch, weight); // []
                    loss.backward();
                    double learningRate = _options.LearningRateAt(step, steps);
                    adam.Step(weight, learningRate);
                    long n = batch[0].shape[0];
                    windowSum += loss.item<float>() * (double)n;
                    windowRows += n;
                    step++;
                    if (step % window == 0 || step == steps)
                    {
                        double value = windowSum / windowRows;
                        curve.Add(value);
                        windowSum = 0;
                        windowRows = 0;
                        if (logger is not null) EstimationLog.CosineSteps(logger, _cut, step, steps, learningRate, value, window);
                        _context.Progress?.Report(new PruningProgress("estimate", step / (double)steps, _cut.Start, _rows.RowsSeen, value,
                            $"cosine step {step}/{steps}"));
                    }
                }
                finally { TokenRowStore.DisposeAll(batch); }
                if (step >= steps) break;
            }
        }

        var transform = weight.detach().to(ScalarType.Float64, CPU, copy: true); // [d, d]
        FitInputs.RequireFiniteTransform(_cut, transform, "cosine");
        var (cosineBefore, _) = _sample.Evaluate(null, device);
        var (cosineAfter, residual) = _sample.Evaluate(transform, device);
        var report = new EstimatorReport(
            Estimator: "cosine",
            Tokens: _rows.RowsSeen,
            Elapsed: _clock.Elapsed,
            RelativeResidual: residual,
            CosineBefore: cosineBefore,
            CosineAfter: cosineAfter,
            LossCurve: curve,
            Notes: Notes());
        return new TransformEstimate(transform.MoveToOuterDisposeScope(), report);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _rows.Dispose();
        _sample.Dispose();
    }

    private int ShuffleSeed(int epoch) => unchecked((_context.Seed * 7919) + epoch + 1);

    private Tensor Loss(Tensor[] batch, Tensor weight)
    {
        var mapped = batch[0].mm(weight); // X·T, [n, d]
        var (prediction, reference) = _options.Loss == CosineLoss.Exact
            ? (HeldScalars.Sum(batch[1], mapped), batch[2]) // Y + X·T vs target (Eq. 7)
            : (mapped, batch[1]); // X·T vs Z (Eq. 8)
        return nn.functional.cosine_similarity(prediction, reference, dim: 1, eps: CosineEpsilon).neg().add(HeldScalars.One, HeldScalars.One).mean();
    }

    /// <summary>The least-squares T on the stored rows (float64 normal equations), as the optimiser's start.</summary>
    private Tensor LeastSquaresStart(Device device, int batchSize)
    {
        using var sums = new NormalEquations(_hiddenSize, device);
        foreach (var batch in _rows.Batches(batchSize, device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
                var z = _options.Loss == CosineLoss.Exact ? batch[2].to(ScalarType.Float64) - batch[1].to(ScalarType.Float64) : batch[1];
                sums.Add(batch[0], z);
            }
            finally { TokenRowStore.DisposeAll(batch); }
        }
        return LeastSquaresSolver.Solve(sums.Gram, sums.Cross, 0, TransformStructure.General).Transform;
    }

    private List<string> Notes()
    {
        var notes = new List<string>
        {
            $"loss {_options.Loss}, init {_options.Init}, Adam {_options.StepsFor(_rows.RowsStored)} steps of {Math.Min(_options.BatchSize, _rows.RowsStored)} rows, {_options.Schedule} lr {_options.LearningRate:G3}"
                + (_options.Schedule == CosineSchedule.WarmupCosine ? $" (warm-up {_options.WarmupFraction:P0}, cosine decay to 0)" : ""),
            $"loss curve: mean mini-batch loss over windows of {Math.Max(1, (_options.StepsFor(_rows.RowsStored) + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints)} steps",
            _rows.Subsampled
                ? $"rows: kept a seeded uniform sample of {_rows.RowsStored} of {_rows.RowsSeen} (cap {_rows.RowCap})"
                : $"rows: kept all {_rows.RowsStored}",
            $"row memory peak {_rows.PeakMemoryBytes} bytes, working memory {WorkingBytes} bytes (both within the budget of {_context.MemoryBudgetBytes})" + (_rows.Spilled ? $", spilled {_rows.SpilledBytes} bytes to a temporary file" : ", no spill"),
        };
        if (_sample.Rows > 0) notes.Add($"cosine figures and residual on a seeded sample of {_sample.Rows} rows");
        return notes;
    }
}
