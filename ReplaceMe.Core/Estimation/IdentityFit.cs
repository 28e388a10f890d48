using System.Diagnostics;
using ReplaceMe.Core.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>Plain removal: accumulates ‖X − Z‖² and ‖Z‖² and a diagnostic sample; the transform is null.</summary>
internal sealed class IdentityFit : ITransformFit
{
    private readonly BlockCut _cut;
    private readonly int _hiddenSize;
    private readonly EstimationContext _context;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly DiagnosticSample _sample;
    private Device? _device;
    private long _tokens;
    private double _residualSquared;
    private double _targetSquared;
    private bool _disposed;

    public IdentityFit(BlockCut cut, int hiddenSize, int diagnosticRows, EstimationContext context)
    {
        _cut = cut;
        _hiddenSize = hiddenSize;
        _context = context;
        _sample = new DiagnosticSample(hiddenSize, diagnosticRows, context.MemoryBudgetBytes, context.Seed);
    }

    public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        FitInputs.Check(_cut, _hiddenSize, mlpOutput, attentionResidual, target);
        _device ??= _context.Device ?? mlpOutput.device;
        using var scope = NewDisposeScope();
        var x = mlpOutput.to(ScalarType.Float64, _device); // [N, d]
        var z = target.to(ScalarType.Float64, _device).sub(attentionResidual.to(ScalarType.Float64, _device)); // [N, d]
        var diff = x.sub(z);
        _residualSquared += diff.mul(diff).sum().item<double>();
        _targetSquared += z.mul(z).sum().item<double>();
        _tokens += mlpOutput.shape[0];
        _sample.Add(mlpOutput, attentionResidual, target);
        _context.Progress?.Report(new PruningProgress("estimate", Block: _cut.Start, Tokens: _tokens));
    }

    public TransformEstimate Complete(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        FitInputs.RequireTokens(_cut, _tokens);
        var (cosine, _) = _sample.Evaluate(null, _device!);
        var notes = new List<string> { "plain removal (no transform)" };
        if (_sample.Rows > 0) notes.Add($"cosine figures on a seeded sample of {_sample.Rows} rows");
        var report = new EstimatorReport(
            Estimator: "identity",
            Tokens: _tokens,
            Elapsed: _clock.Elapsed,
            RelativeResidual: _targetSquared > 0 ? Math.Sqrt(_residualSquared / _targetSquared) : null,
            CosineBefore: cosine,
            CosineAfter: cosine,
            Notes: notes);
        return new TransformEstimate(null, report);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sample.Dispose();
    }
}
