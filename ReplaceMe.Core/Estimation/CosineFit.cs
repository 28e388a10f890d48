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
    private readonly CosineLbfgs.Plan? _plan; // L-BFGS only: the correction pairs the budget allows
    private CosineLbfgs.Outcome? _lbfgs; // the L-BFGS run's figures, for the notes
    private double? _scale; // the least-squares factor applied to T, for the notes
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
        int batchRows = (int)Math.Min(options.BatchSize, rowCap);
        if (options.Optimizer == CosineOptimizer.Lbfgs)
        {
            // L-BFGS keeps as many correction pairs, in as wide a dtype, as the budget allows (docs/estimators.md,
            // "Cosine memory"); below the minimum the fit is refused before any row is stored.
            _plan = CosineLbfgs.Plan.For(hiddenSize, context.MemoryBudgetBytes - BatchBytesFor(hiddenSize, widths.Length, batchRows));
            if (_plan is null || WorkingBytesFor(hiddenSize, widths.Length, batchRows, options.DiagnosticRows, _plan) > context.MemoryBudgetBytes)
            {
                long need = WorkingBytesFor(hiddenSize, widths.Length, batchRows, options.DiagnosticRows, CosineLbfgs.Plan.Minimum);
                long adam = WorkingBytesFor(hiddenSize, widths.Length, batchRows, options.DiagnosticRows);
                throw new InsufficientMemoryBudgetException(
                    $"The cosine estimator's L-BFGS optimiser needs at least {need:N0} bytes of working memory at hidden size {hiddenSize} " +
                    $"({CosineLbfgs.MinHistory} float32 correction pairs and its d×d state, {batchRows}-row passes), but the memory budget " +
                    $"(EstimationContext.MemoryBudgetBytes, from PruningOptions.MemoryBudgetBytes) is {context.MemoryBudgetBytes:N0} bytes. " +
                    $"Raise the budget, or lower CosineOptions.BatchSize, or choose Optimizer = CosineOptimizer.Adam ({adam:N0} bytes).")
                {
                    BudgetBytes = context.MemoryBudgetBytes,
                    RequiredBytes = need,
                };
            }
            WorkingBytes = WorkingBytesFor(hiddenSize, widths.Length, batchRows, options.DiagnosticRows, _plan);
        }
        else WorkingBytes = WorkingBytesFor(hiddenSize, widths.Length, batchRows, options.DiagnosticRows);
        long left = Math.Max(0, context.MemoryBudgetBytes - WorkingBytes);
        long sampleBudget = Math.Min(left, DiagnosticSample.BytesFor(hiddenSize, options.DiagnosticRows));
        _sample = new DiagnosticSample(hiddenSize, options.DiagnosticRows, sampleBudget, context.Seed);
        _rows = new TokenRowStore(widths, rowCap, left - sampleBudget, context.Seed);
    }

    /// <summary>
    /// Bytes the optimisation needs besides the stored rows, counted against the budget: one batch buffer and the
    /// batch's activations and gradients, the diagnostic evaluation's float64 batch, and the optimiser's state. For Adam
    /// (<paramref name="lbfgs"/> omitted): T, its gradient and Adam's two moments (float32) and the least-squares start
    /// (float64 sums and solve), all counted together. For L-BFGS: the search's working set
    /// (<see cref="CosineLbfgs.Plan.BytesFor"/>: correction pairs, M, S, gradient, direction, the pass's T and its
    /// gradient, the whitening), or the least-squares start or the diagnostic batch (with T) when larger: those run
    /// before and after the search, not beside it.
    /// </summary>
    internal static long WorkingBytesFor(int hiddenSize, int matrices, int batchRows, int diagnosticRows, CosineLbfgs.Plan? lbfgs)
    {
        long d = hiddenSize, square = d * d;
        long batch = BatchBytesFor(hiddenSize, matrices, batchRows);
        long diagnostics = Math.Min(DiagnosticSample.EvaluationBatch, diagnosticRows) * d * sizeof(double) * 8; // x, y, target, X·T, Z, sums, squares
        long start = 6 * square * sizeof(double);                  // XᵀX, XᵀZ, identity, factor, solution, temporary
        return lbfgs is { } plan
            ? batch + Math.Max(plan.BytesFor(hiddenSize), Math.Max(start, diagnostics + 2 * square * sizeof(double)))
            : batch + diagnostics + start;
    }

    /// <summary>One batch buffer (and its device copy) and autograd's <c>[n, d]</c> tensors of a batch.</summary>
    internal static long BatchBytesFor(int hiddenSize, int matrices, int batchRows) => batchRows * (long)hiddenSize * sizeof(float) * (2L * matrices + 8);

    /// <summary>Adam's working bytes (<see cref="WorkingBytesFor(int, int, int, int, CosineLbfgs.Plan?)"/> plus T, its gradient, the two moments and temporaries in float32).</summary>
    internal static long WorkingBytesFor(int hiddenSize, int matrices, int batchRows, int diagnosticRows)
        => WorkingBytesFor(hiddenSize, matrices, batchRows, diagnosticRows, lbfgs: null) + 6L * hiddenSize * hiddenSize * sizeof(float);

    /// <summary>Bytes of working memory counted against the budget before rows are stored (<see cref="WorkingBytesFor(int, int, int, int, CosineLbfgs.Plan?)"/>).</summary>
    internal long WorkingBytes { get; }

    /// <summary>L-BFGS only: the correction pairs the budget allowed (for tests and memory reports).</summary>
    internal CosineLbfgs.Plan? LbfgsPlan => _plan;

    /// <summary>L-BFGS only, after <see cref="Complete"/>: the search's figures, its ledger's peak bytes included (the transform is not kept).</summary>
    internal CosineLbfgs.Outcome? LbfgsOutcome => _lbfgs;

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
        if (logger is not null && _options.Optimizer == CosineOptimizer.Lbfgs)
            CosineLbfgsLog.Rows(logger, _cut, _rows.RowsStored, _rows.RowsSeen, _rows.SpilledBytes, steps, batchSize);
        else if (logger is not null)
            EstimationLog.CosineRows(logger, _cut, _rows.RowsStored, _rows.RowsSeen, _rows.SpilledBytes, steps, _options.Schedule, _options.LearningRate, batchSize);

        using var scope = NewDisposeScope();
        var start = _options.Init == CosineInit.LeastSquares
            ? LeastSquaresStart(device, batchSize)
            : eye(_hiddenSize, dtype: ScalarType.Float64, device: device); // [d, d]
        var (transform, curve, _) = _options.Optimizer == CosineOptimizer.Lbfgs
            ? RunLbfgs(start, steps, batchSize, device, cancellationToken)
            : RunAdam(start, steps, batchSize, device, cancellationToken);
        if (_options.LeastSquaresScale)
        {
            _scale = LeastSquaresScale(transform, device, batchSize);
            if (double.IsFinite(_scale.Value) && _scale.Value > 0) HeldScalars.TimesInPlace(transform, _scale.Value);
        }
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

    /// <summary>Mini-batch Adam over seeded shuffled batches with the learning-rate schedule; T as float64 on the CPU.</summary>
    private (Tensor Transform, List<double> Curve, int Steps) RunAdam(Tensor start, int steps, int batchSize, Device device, CancellationToken cancellationToken)
    {
        var logger = _context.Logger;
        using var scope = NewDisposeScope();
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

        var transform = weight.detach().to(ScalarType.Float64, CPU, copy: true).MoveToOuterDisposeScope(); // [d, d]
        return (transform, curve, steps);
    }

    /// <summary>Full-batch L-BFGS (<see cref="CosineLbfgs"/>); the curve is the full-batch loss at the start and after each iteration, thinned to at most <see cref="CosineOptions.LossCurvePoints"/> + 1 points.</summary>
    private (Tensor Transform, List<double> Curve, int Steps) RunLbfgs(Tensor start, int steps, int chunkRows, Device device, CancellationToken cancellationToken)
    {
        var logger = _context.Logger;
        var search = new CosineLbfgs(_rows, _options.Loss, chunkRows, device, _plan!.Value);
        int every = Math.Max(1, (steps + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints);
        var outcome = search.Run(start, steps, _options.Tolerance, (iteration, loss) =>
        {
            if (iteration % every != 0) return;
            if (logger is not null) CosineLbfgsLog.Iteration(logger, _cut, iteration, steps, loss);
            _context.Progress?.Report(new PruningProgress("estimate", iteration / (double)steps, _cut.Start, _rows.RowsSeen, loss, $"cosine L-BFGS iteration {iteration}/{steps}"));
        }, cancellationToken);
        using var scope = NewDisposeScope();
        var losses = outcome.Losses;
        int iterations = losses.Count - 1;
        int stride = Math.Max(1, (iterations + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints);
        var curve = new List<double>();
        for (int i = 0; i < losses.Count; i += stride) curve.Add(losses[i]);
        if ((losses.Count - 1) % stride != 0) curve.Add(losses[^1]);
        _lbfgs = outcome with { Transform = null! };
        var transform = outcome.Transform.to(ScalarType.Float64, CPU, copy: true).MoveToOuterDisposeScope();
        outcome.Transform.Dispose();
        return (transform, curve, iterations);
    }

    /// <summary>The factor α minimising ‖α·X·T − Z‖² over the stored rows (Z = target − Y): Σ⟨X·T, Z⟩ / Σ‖X·T‖².</summary>
    private double LeastSquaresScale(Tensor transform, Device device, int batchSize)
    {
        using var scope = NewDisposeScope();
        var t = transform.to(ScalarType.Float64, device);
        double cross = 0, square = 0;
        foreach (var batch in _rows.Batches(batchSize, device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
                var mapped = batch[0].to(ScalarType.Float64).mm(t); // X·T, [n, d]
                var z = _options.Loss == CosineLoss.Exact
                    ? HeldScalars.AddScaled(batch[2].to(ScalarType.Float64), batch[1].to(ScalarType.Float64), -1) // target − Y
                    : batch[1].to(ScalarType.Float64); // Z
                cross += mapped.mul(z).sum().item<double>();
                square += HeldScalars.Square(mapped).sum().item<double>();
            }
            finally { TokenRowStore.DisposeAll(batch); }
        }
        return square > 0 ? cross / square : 1;
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
        var notes = new List<string>();
        if (_lbfgs is { } run)
        {
            notes.Add($"loss {_options.Loss}, init {_options.Init}, full-batch L-BFGS (memory {_plan!.Value.History} {(_plan.Value.Float32Pairs ? "float32" : "float64")} pairs, whitened by the weighted Gram matrix): "
                + $"{run.Losses.Count - 1} iterations ({(run.Converged ? $"converged: last drop < {_options.Tolerance:G3}" : "iteration limit")}), {run.Evaluations} passes over the rows in chunks of {Math.Min(_options.BatchSize, _rows.RowsStored)}");
            notes.Add($"L-BFGS working set peak {run.PeakBytes} bytes of d×d tensors (planned {_plan.Value.BytesFor(_hiddenSize)})");
            notes.Add($"loss curve: full-batch loss at the start and every {Math.Max(1, (run.Losses.Count - 1 + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints)} iterations, and at the end");
        }
        else
        {
            notes.Add($"loss {_options.Loss}, init {_options.Init}, Adam {_options.StepsFor(_rows.RowsStored)} steps of {Math.Min(_options.BatchSize, _rows.RowsStored)} rows, {_options.Schedule} lr {_options.LearningRate:G3}"
                + (_options.Schedule == CosineSchedule.WarmupCosine ? $" (warm-up {_options.WarmupFraction:P0}, cosine decay to 0)" : ""));
            notes.Add($"loss curve: mean mini-batch loss over windows of {Math.Max(1, (_options.StepsFor(_rows.RowsStored) + CosineOptions.LossCurvePoints - 1) / CosineOptions.LossCurvePoints)} steps");
        }
        notes.AddRange(
        [
            _rows.Subsampled
                ? $"rows: kept a seeded uniform sample of {_rows.RowsStored} of {_rows.RowsSeen} (cap {_rows.RowCap})"
                : $"rows: kept all {_rows.RowsStored}",
            $"row memory peak {_rows.PeakMemoryBytes} bytes, working memory {WorkingBytes} bytes (both within the budget of {_context.MemoryBudgetBytes})" + (_rows.Spilled ? $", spilled {_rows.SpilledBytes} bytes to a temporary file" : ", no spill"),
        ]);
        if (_scale is double scale)
            notes.Add(double.IsFinite(scale) && scale > 0
                ? $"T scaled by {scale:G6}, the factor minimising ‖α·X·T − Z‖² over the stored rows"
                : $"least-squares scale {scale:G6} is not a positive number: T left unscaled");
        if (_sample.Rows > 0) notes.Add($"cosine figures and residual on a seeded sample of {_sample.Rows} rows");
        return notes;
    }
}
