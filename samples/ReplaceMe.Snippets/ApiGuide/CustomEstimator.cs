// A custom estimator (docs/api-guide.md).
// <snippet:custom-estimator>
using System.Diagnostics;
using ReplaceMe.Core;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

/// <summary>
/// Fits a diagonal T: one scale per channel, t_j = Σ X_j·Z_j / Σ X_j² with Z = target − Y (the least-squares
/// solution restricted to diagonal matrices). Cheap and memory-light: it keeps two length-d sums.
/// </summary>
public sealed class DiagonalEstimator : ITransformEstimator
{
    public string Name => "diagonal";

    public ITransformFit Begin(BlockCut cut, int hiddenSize, EstimationContext context) => new Fit(hiddenSize);

    private sealed class Fit(int d) : ITransformFit
    {
        private readonly Tensor _xz = zeros(d, dtype: ScalarType.Float64); // Σ X_j·Z_j
        private readonly Tensor _xx = zeros(d, dtype: ScalarType.Float64); // Σ X_j²
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _tokens;

        public void Accumulate(Tensor mlpOutput, Tensor attentionResidual, Tensor target)
        {
            using var scope = NewDisposeScope();
            var x = mlpOutput.to(ScalarType.Float64).cpu();                             // [N, d]
            var z = (target.to(ScalarType.Float64) - attentionResidual.to(ScalarType.Float64)).cpu(); // [N, d]
            _xz.add_((x * z).sum(0));
            _xx.add_((x * x).sum(0));
            _tokens += x.shape[0];
        }

        public TransformEstimate Complete(CancellationToken cancellationToken = default)
        {
            if (_tokens == 0) throw new PruningException("The diagonal estimator saw no tokens.");
            var t = diag(_xz / _xx.clamp_min(1e-12));                                // [d, d], float64 on the CPU
            return new TransformEstimate(t, new EstimatorReport("diagonal", _tokens, _clock.Elapsed));
        }

        public void Dispose()
        {
            _xz.Dispose();
            _xx.Dispose();
        }
    }
}
// </snippet:custom-estimator>
