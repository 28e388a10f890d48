using System.Diagnostics;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Selection;

/// <summary>Test-only least squares: T = pinv(XᵀX)·XᵀZ in float64 (min-norm when X has dead dimensions). Records tokens per cut.</summary>
internal sealed class PinvLeastSquaresTestEstimator : ITransformEstimator
{
    public List<(BlockCut Cut, long Tokens)> Completed { get; } = [];

    public string Name => "test-pinv";

    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context) => new Fit(this, cut, hiddenSize);

    private sealed class Fit(PinvLeastSquaresTestEstimator owner, BlockCut cut, int d) : ITransformFit
    {
        private readonly Tensor _xtx = zeros([d, d], ScalarType.Float64).DetachFromDisposeScope();
        private readonly Tensor _xtz = zeros([d, d], ScalarType.Float64).DetachFromDisposeScope();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _tokens;

        public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target)
        {
            using var scope = NewDisposeScope();
            var x = mlpOutput.to(ScalarType.Float64).cpu();
            var z = target.to(ScalarType.Float64).cpu() - attentionResidual.to(ScalarType.Float64).cpu();
            _xtx.add_(x.t().matmul(x));
            _xtz.add_(x.t().matmul(z));
            _tokens += x.shape[0];
        }

        public TransformEstimate Complete(CancellationToken cancellationToken = default)
        {
            owner.Completed.Add((cut, _tokens));
            var t = linalg.pinv(_xtx).matmul(_xtz).DetachFromDisposeScope();
            return new TransformEstimate(t, new EstimatorReport(owner.Name, _tokens, _clock.Elapsed));
        }

        public void Dispose()
        {
            _xtx.Dispose();
            _xtz.Dispose();
        }
    }
}

/// <summary>Test-only plain removal: no transform.</summary>
internal sealed class IdentityTestEstimator : ITransformEstimator
{
    public string Name => "test-identity";

    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context) => new Fit();

    private sealed class Fit : ITransformFit
    {
        private long _tokens;
        public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target) => _tokens += mlpOutput.shape[0];
        public TransformEstimate Complete(CancellationToken cancellationToken = default) =>
            new(null, new EstimatorReport("test-identity", _tokens, TimeSpan.Zero));
        public void Dispose() { }
    }
}
