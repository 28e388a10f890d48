using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>
/// Full-batch L-BFGS on the cosine objective of <see cref="CosineFit"/> over every stored row (docs/estimators.md,
/// "Cosine optimiser"). Each evaluation is one pass over the rows in chunks (loss summed in float64, gradients
/// accumulated), so the result does not depend on how the rows are held (RAM or spilled) and no mini-batch noise
/// stops the descent. The search runs in whitened coordinates: T = M·S with M = V·diag(1/√max(λ, δ)) from the
/// eigen-decomposition V·diag(λ)·Vᵀ of the row-weighted Gram matrix Σ xᵢxᵢᵀ/‖rᵢ‖² (rᵢ the cosine's reference row:
/// Z for Eq. 8, the target for Eq. 7), which is the cosine loss's curvature up to the per-row projection. In S the
/// problem is close to isotropic, whatever the scales of the activation channels.
/// </summary>
internal sealed class CosineLbfgs
{
    /// <summary>Correction pairs kept (the L-BFGS memory).</summary>
    internal const int History = 8;

    /// <summary>Smallest eigenvalue used in the whitening, relative to the largest: flatter directions are not amplified further.</summary>
    internal const double RelativeEigenFloor = 1e-6;

    private const double Armijo = 1e-4;
    private const int MaxHalvings = 40;
    private const float CosineEpsilon = 1e-8f;

    private readonly TokenRowStore _rows;
    private readonly CosineLoss _loss;
    private readonly int _chunk;
    private readonly Device _device;

    public CosineLbfgs(TokenRowStore rows, CosineLoss loss, int chunkRows, Device device)
    {
        _rows = rows;
        _loss = loss;
        _chunk = chunkRows;
        _device = device;
    }

    /// <summary>What the search did.</summary>
    /// <param name="Transform">The final T, float64 <c>[d, d]</c> on the fit's device.</param>
    /// <param name="Losses">The full-batch loss at the start and after each iteration.</param>
    /// <param name="Evaluations">Passes over the rows (loss and gradient), line-search trials included.</param>
    /// <param name="Converged">The loss stopped falling before the iteration limit.</param>
    internal sealed record Outcome(Tensor Transform, IReadOnlyList<double> Losses, int Evaluations, bool Converged);

    /// <summary>
    /// Runs at most <paramref name="iterations"/> iterations from <paramref name="start"/> (float64 <c>[d, d]</c>), stopping
    /// when an iteration lowers the loss by less than <paramref name="tolerance"/> (absolute: the loss is a mean of
    /// 1 − cos, between 0 and 2) or the gradient vanishes.
    /// </summary>
    public Outcome Run(Tensor start, int iterations, double tolerance, Action<int, double>? afterIteration, CancellationToken cancellationToken)
    {
        // Long-lived tensors (M, S, the gradient, the correction pairs) are detached and disposed here; every
        // temporary lives in a per-call dispose scope.
        var (m, inverse) = Whitening(); // M and M⁻¹, float64 [d, d]
        Tensor s, g = null!;
        using (NewDisposeScope()) s = inverse.mm(start.to(ScalarType.Float64, _device)).DetachFromDisposeScope(); // S₀ = M⁻¹·T₀
        inverse.Dispose();
        var steps = new List<Tensor>();
        var changes = new List<Tensor>();
        var curvatures = new List<double>();
        try
        {
            int evaluations = 1;
            (double f, g) = Evaluate(m, s);
            var losses = new List<double> { f };
            bool converged = false;
            for (int k = 0; k < iterations; k++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double gradientNorm = Norm(g);
                if (!(gradientNorm > 0)) { converged = true; break; }
                var direction = Direction(g, steps, changes, curvatures); // −H·g
                double slope = Dot(g, direction);
                if (!(slope < 0))
                {
                    // Not a descent direction (stale curvature pairs): forget them and take steepest descent.
                    Clear(steps, changes, curvatures);
                    direction.Dispose();
                    using (NewDisposeScope()) direction = HeldScalars.Times(g, -1.0).DetachFromDisposeScope();
                    slope = -gradientNorm * gradientNorm;
                }
                // Without curvature pairs the step is scaled to move S by 1 % of its norm; with them it starts at 1.
                double rate = steps.Count == 0 ? 0.01 * Math.Max(Norm(s), 1) / Norm(direction) : 1.0;
                Tensor? next = null, nextGradient = null;
                double nextLoss = double.NaN;
                for (int h = 0; h <= MaxHalvings; h++, rate *= 0.5)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    next?.Dispose();
                    nextGradient?.Dispose();
                    using (NewDisposeScope()) next = HeldScalars.AddScaled(s, direction, rate).DetachFromDisposeScope();
                    (nextLoss, nextGradient) = Evaluate(m, next);
                    evaluations++;
                    if (double.IsFinite(nextLoss) && nextLoss <= f + Armijo * rate * slope) break;
                }
                direction.Dispose();
                if (!(nextLoss < f))
                {
                    // No decrease even after the halvings: the loss is flat to rounding here.
                    next!.Dispose();
                    nextGradient!.Dispose();
                    converged = true;
                    break;
                }
                Tensor step, change;
                using (NewDisposeScope())
                {
                    step = HeldScalars.AddScaled(next!, s, -1).DetachFromDisposeScope();                // sₖ
                    change = HeldScalars.AddScaled(nextGradient!, g, -1).DetachFromDisposeScope();      // yₖ
                }
                double curvature = Dot(step, change);
                if (curvature > 1e-12 * Dot(change, change))
                {
                    steps.Add(step);
                    changes.Add(change);
                    curvatures.Add(curvature);
                    if (steps.Count > History)
                    {
                        steps[0].Dispose();
                        changes[0].Dispose();
                        steps.RemoveAt(0);
                        changes.RemoveAt(0);
                        curvatures.RemoveAt(0);
                    }
                }
                else
                {
                    step.Dispose();
                    change.Dispose();
                }
                s.Dispose();
                g.Dispose();
                s = next!;
                g = nextGradient!;
                double drop = f - nextLoss;
                f = nextLoss;
                losses.Add(f);
                afterIteration?.Invoke(k + 1, f);
                if (drop < tolerance) { converged = true; break; }
            }
            using var final = NewDisposeScope();
            var transform = m.mm(s).MoveToOuterDisposeScope(); // T = M·S
            return new Outcome(transform, losses, evaluations, converged);
        }
        finally
        {
            Clear(steps, changes, curvatures);
            m.Dispose();
            s.Dispose();
            g?.Dispose();
        }
    }

    private static void Clear(List<Tensor> steps, List<Tensor> changes, List<double> curvatures)
    {
        foreach (var t in steps) t.Dispose();
        foreach (var t in changes) t.Dispose();
        steps.Clear();
        changes.Clear();
        curvatures.Clear();
    }

    /// <summary>The L-BFGS two-loop recursion: −H·g with H₀ = (sᵀy / yᵀy)·I from the newest pair.</summary>
    private static Tensor Direction(Tensor g, List<Tensor> steps, List<Tensor> changes, List<double> curvatures)
    {
        using var scope = NewDisposeScope();
        var q = g.clone();
        var alphas = new double[steps.Count];
        for (int i = steps.Count - 1; i >= 0; i--)
        {
            alphas[i] = Dot(steps[i], q) / curvatures[i];
            q = HeldScalars.AddScaled(q, changes[i], -alphas[i]);
        }
        if (steps.Count > 0)
            q = HeldScalars.Times(q, curvatures[^1] / Dot(changes[^1], changes[^1]));
        for (int i = 0; i < steps.Count; i++)
        {
            double beta = Dot(changes[i], q) / curvatures[i];
            q = HeldScalars.AddScaled(q, steps[i], alphas[i] - beta);
        }
        return HeldScalars.Times(q, -1.0).DetachFromDisposeScope(); // owned by the caller
    }

    private static double Dot(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.mul(b).sum().item<double>();
    }

    private static double Norm(Tensor a)
    {
        using var scope = NewDisposeScope();
        return a.norm().item<double>();
    }

    /// <summary>Mean cosine loss over all stored rows and its gradient with respect to S (float64 <c>[d, d]</c>), T = M·S.</summary>
    private (double Loss, Tensor Gradient) Evaluate(Tensor m, Tensor s)
    {
        using var scope = NewDisposeScope();
        var leaf = s.to(ScalarType.Float32).detach().requires_grad_(true); // S, [d, d]
        var m32 = m.to(ScalarType.Float32);
        double total = 0;
        long rows = _rows.RowsStored;
        foreach (var batch in _rows.Batches(_chunk, _device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
                var transform = m32.mm(leaf); // T, [d, d] (rebuilt per chunk so that each chunk's graph is freed after backward)
                var mapped = batch[0].mm(transform); // X·T, [n, d]
                var (prediction, reference) = _loss == CosineLoss.Exact
                    ? (HeldScalars.Sum(batch[1], mapped), batch[2])
                    : (mapped, batch[1]);
                var cosines = nn.functional.cosine_similarity(prediction, reference, dim: 1, eps: CosineEpsilon); // [n]
                var chunkLoss = HeldScalars.Times(cosines.sum(), -1.0 / rows); // −Σ cos / N: the loss's varying part
                chunkLoss.backward();
                total += cosines.to(ScalarType.Float64).sum().item<double>();
            }
            finally { TokenRowStore.DisposeAll(batch); }
        }
        var gradient = leaf.grad!.to(ScalarType.Float64).DetachFromDisposeScope(); // owned by the caller
        return (1 - total / rows, gradient);
    }

    /// <summary>M = V·diag(1/√max(λ, δ)) from the eigen-decomposition of the row-weighted Gram matrix, and M⁻¹ = diag(√max(λ, δ))·Vᵀ (both detached, owned by the caller).</summary>
    private (Tensor M, Tensor Inverse) Whitening()
    {
        using var scope = NewDisposeScope();
        int d = _rows.Widths[0];
        var gram = zeros([d, d], ScalarType.Float64, _device);
        foreach (var batch in _rows.Batches(_chunk, _device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
                var x = batch[0].to(ScalarType.Float64); // [n, d]
                var reference = (_loss == CosineLoss.Exact ? batch[2] : batch[1]).to(ScalarType.Float64); // [n, d]
                var weights = HeldScalars.ClampMin(HeldScalars.Square(reference).sum(1), 1e-30).reciprocal(); // 1/‖r‖², [n]
                gram.addmm_(x.mul(weights.unsqueeze(1)).t(), x);
            }
            finally { TokenRowStore.DisposeAll(batch); }
        }
        HeldScalars.TimesInPlace(gram, 1.0 / _rows.RowsStored);
        var (eigenvalues, vectors) = linalg.eigh(gram); // ascending, [d] and [d, d]
        double largest = eigenvalues[-1].item<double>();
        double floor = largest > 0 && double.IsFinite(largest) ? largest * RelativeEigenFloor : 1;
        var root = HeldScalars.ClampMin(eigenvalues, floor).sqrt(); // [d]
        return (vectors.div(root.unsqueeze(0)).DetachFromDisposeScope(), vectors.t().mul(root.unsqueeze(1)).DetachFromDisposeScope());
    }
}

/// <summary>Source-generated log messages of the L-BFGS cosine fit.</summary>
internal static partial class CosineLbfgsLog
{
    [LoggerMessage(EventId = 411, Level = LogLevel.Information,
        Message = "Cosine fit for cut {Cut}: kept {Rows} of {Seen} token rows, {Spilled} bytes spilled to disk; full-batch L-BFGS, at most {Iterations} iterations, passes in chunks of {Chunk} rows")]
    public static partial void Rows(ILogger logger, ReplaceMe.Core.BlockCut cut, long rows, long seen, long spilled, int iterations, long chunk);

    [LoggerMessage(EventId = 412, Level = LogLevel.Debug,
        Message = "Cosine fit for cut {Cut}: L-BFGS iteration {Iteration}/{Iterations}, full-batch loss {Loss:G6}")]
    public static partial void Iteration(ILogger logger, ReplaceMe.Core.BlockCut cut, int iteration, int iterations, double loss);
}
