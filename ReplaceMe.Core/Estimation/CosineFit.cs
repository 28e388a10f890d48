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
        // One budget for both stores: the small diagnostic sample first, the optimiser's rows get the rest.
        long sampleBudget = Math.Min(context.MemoryBudgetBytes, DiagnosticSample.BytesFor(hiddenSize, options.DiagnosticRows));
        _sample = new DiagnosticSample(hiddenSize, options.DiagnosticRows, sampleBudget, context.Seed);
        _rows = new TokenRowStore(widths, options.RowCapFor(hiddenSize), context.MemoryBudgetBytes - sampleBudget, context.Seed);
    }

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
        if (logger is not null) EstimationLog.CosineRows(logger, _cut, _rows.RowsStored, _rows.RowsSeen, _rows.SpilledBytes);

        using var scope = NewDisposeScope();
        var start = _options.Init == CosineInit.LeastSquares
            ? LeastSquaresStart(device)
            : eye(_hiddenSize, dtype: ScalarType.Float32, device: device); // [d, d]
        using var weight = new Parameter(start.to(ScalarType.Float32).contiguous(), requires_grad: true); // T, [d, d]
        using var adam = new AdamStep(weight, _options.LearningRate);
        var curve = new List<double>(_options.Epochs);
        for (int epoch = 0; epoch < _options.Epochs; epoch++)
        {
            double lossSum = 0;
            long seen = 0;
            foreach (var batch in _rows.Batches(_options.BatchSize, device, ShuffleSeed(epoch)))
            {
                try
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var step = NewDisposeScope();
                    AdamStep.ZeroGrad(weight);
                    var loss = Loss(batch, weight); // []
                    loss.backward();
                    adam.Step(weight);
                    long n = batch[0].shape[0];
                    lossSum += loss.item<float>() * (double)n;
                    seen += n;
                }
                finally { TokenRowStore.DisposeAll(batch); }
            }
            double epochLoss = lossSum / seen;
            curve.Add(epochLoss);
            if (logger is not null) EstimationLog.CosineEpoch(logger, _cut, epoch + 1, _options.Epochs, epochLoss);
            _context.Progress?.Report(new PruningProgress("estimate", (epoch + 1) / (double)_options.Epochs, _cut.Start, _rows.RowsSeen, epochLoss,
                $"cosine epoch {epoch + 1}/{_options.Epochs}"));
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
            ? (batch[1].add(mapped, HeldScalars.One), batch[2]) // Y + X·T vs target (Eq. 7)
            : (mapped, batch[1]); // X·T vs Z (Eq. 8)
        return nn.functional.cosine_similarity(prediction, reference, dim: 1, eps: CosineEpsilon).neg().add(HeldScalars.One, HeldScalars.One).mean(); // add(Scalar) alone passes a temporary alpha
    }

    /// <summary>The least-squares T on the stored rows (float64 normal equations), as the optimiser's start.</summary>
    private Tensor LeastSquaresStart(Device device)
    {
        using var sums = new NormalEquations(_hiddenSize, device);
        foreach (var batch in _rows.Batches(4096, device, shuffleSeed: null))
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
            $"loss {_options.Loss}, init {_options.Init}, Adam lr {_options.LearningRate:G3}, batch {_options.BatchSize}, {_options.Epochs} epochs",
            _rows.Subsampled
                ? $"rows: kept a seeded uniform sample of {_rows.RowsStored} of {_rows.RowsSeen} (cap {_rows.RowCap})"
                : $"rows: kept all {_rows.RowsStored}",
            $"row memory peak {_rows.PeakMemoryBytes} bytes" + (_rows.Spilled ? $", spilled {_rows.SpilledBytes} bytes to a temporary file" : ", no spill"),
        };
        if (_sample.Rows > 0) notes.Add($"cosine figures and residual on a seeded sample of {_sample.Rows} rows");
        return notes;
    }
}
