using System.Diagnostics;
using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>One least-squares fit: streams normal equations, then solves (see <see cref="LeastSquaresSolver"/>).</summary>
internal sealed class LeastSquaresFit : ITransformFit
{
    /// <summary>Ridge added, relative to mean(diag XᵀX), when the user allows an underdetermined fit.</summary>
    internal const double UnderdeterminedRelativeRidge = 1e-6;

    private readonly BlockCut _cut;
    private readonly int _hiddenSize;
    private readonly LeastSquaresOptions _options;
    private readonly EstimationContext _context;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly DiagnosticSample _sample;
    private NormalEquations? _sums;
    private bool _disposed;

    public LeastSquaresFit(BlockCut cut, int hiddenSize, LeastSquaresOptions options, EstimationContext context)
    {
        _cut = cut;
        _hiddenSize = hiddenSize;
        _options = options;
        _context = context;
        _sample = new DiagnosticSample(hiddenSize, options.DiagnosticRows, context.MemoryBudgetBytes, context.Seed);
    }

    public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        FitInputs.Check(_cut, _hiddenSize, mlpOutput, attentionResidual, target);
        _sums ??= new NormalEquations(_hiddenSize, _context.Device ?? mlpOutput.device);
        using var scope = NewDisposeScope();
        // Z = target − Y in float64: both are large residual-stream states, their difference is small.
        var z = target.to(ScalarType.Float64).sub(attentionResidual.to(ScalarType.Float64)); // [N, d]
        _sums.Add(mlpOutput, z);
        _sample.Add(mlpOutput, attentionResidual, target);
        _context.Progress?.Report(new PruningProgress("estimate", Block: _cut.Start, Tokens: _sums.Rows));
    }

    public TransformEstimate Complete(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        long tokens = _sums?.Rows ?? 0;
        FitInputs.RequireTokens(_cut, tokens);
        var sums = _sums!;
        var logger = _context.Logger;
        var notes = new List<string> { $"structure {_options.Structure}", $"streamed statistics hold {sums.Bytes} bytes (2·d² float64, independent of tokens)" };

        double ridge = _options.Ridge;
        if (_options.Structure == TransformStructure.General && tokens < _hiddenSize)
        {
            if (!_options.AllowUnderdetermined)
                throw new PruningException(
                    $"Cut {_cut}: only {tokens} valid calibration tokens for hidden size {_hiddenSize}; least squares needs at least {_hiddenSize} " +
                    "tokens to determine T. Add calibration text, or set AllowUnderdetermined (CLI: prune --allow-underdetermined) to fit with a small ridge.");
            double extra = UnderdeterminedRelativeRidge * MeanDiagonal(sums.Gram);
            ridge += extra;
            if (logger is not null) EstimationLog.Underdetermined(logger, _cut, tokens, _hiddenSize, extra);
            notes.Add($"underdetermined ({tokens} tokens < d = {_hiddenSize}): added ridge {extra:G3}");
        }

        using var scope = NewDisposeScope();
        if (!sums.Gram.isfinite().all().item<bool>() || !sums.Cross.isfinite().all().item<bool>())
            throw new PruningException(
                $"Cut {_cut}: the accumulated statistics XᵀX and XᵀZ are NaN or infinite: the activations are too large for float64 sums, " +
                "so the least-squares estimator cannot produce a finite transform.");
        var solution = LeastSquaresSolver.Solve(sums.Gram, sums.Cross, ridge, _options.Structure);
        var transform = solution.Transform.to(ScalarType.Float64, CPU); // [d, d]
        FitInputs.RequireFiniteTransform(_cut, transform, "least-squares");
        cancellationToken.ThrowIfCancellationRequested();

        double zSquared = sums.TargetSquaredNorm;
        double? residual = zSquared > 0 ? Math.Sqrt(sums.ResidualSquaredNorm(solution.Transform) / zSquared) : null;
        var device = sums.Device;
        var (cosineBefore, _) = _sample.Evaluate(null, device);
        var (cosineAfter, _) = _sample.Evaluate(transform, device);
        if (_sample.Rows > 0) notes.Add($"cosine figures on a seeded sample of {_sample.Rows} rows");

        if (logger is not null)
        {
            if (solution.UsedPseudoInverse) EstimationLog.PseudoInverse(logger, _cut);
            else if (solution.Damping > ridge)
            {
                double meanDiagonal = MeanDiagonal(sums.Gram);
                EstimationLog.Damped(logger, _cut, solution.Damping - ridge, meanDiagonal);
            }
            EstimationLog.LeastSquaresSolved(logger, _cut, tokens, solution.ConditionEstimate ?? double.NaN,
                solution.Damping, solution.UsedPseudoInverse, residual ?? double.NaN);
        }
        var report = new EstimatorReport(
            Estimator: "lstsq",
            Tokens: tokens,
            Elapsed: _clock.Elapsed,
            RelativeResidual: residual,
            ConditionEstimate: solution.ConditionEstimate,
            Damping: solution.Damping,
            UsedPseudoInverse: solution.UsedPseudoInverse,
            CosineBefore: cosineBefore,
            CosineAfter: cosineAfter,
            Notes: notes);
        return new TransformEstimate(transform.MoveToOuterDisposeScope(), report);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sums?.Dispose();
        _sample.Dispose();
    }

    private static double MeanDiagonal(Tensor gram)
    {
        using var scope = NewDisposeScope();
        return gram.diagonal().mean().item<double>();
    }
}
