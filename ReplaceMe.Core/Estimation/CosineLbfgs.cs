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
    /// <summary>Most correction pairs kept (the L-BFGS memory) when the budget allows.</summary>
    internal const int MaxHistory = 8;

    /// <summary>Fewest correction pairs: below this the budget is refused rather than the search crippled.</summary>
    internal const int MinHistory = 3;

    /// <summary>
    /// Bytes per d² of the search's working set besides the correction pairs, an upper bound over its phases: M, S, the
    /// gradient g and the direction in float64 (32), M in float32 (4), a pass's float32 T, its gradient and autograd's
    /// product (12), and either the trial gradient (8) while the new pair is formed or the whitening's Gram matrix, its
    /// eigenvectors and LAPACK's workspace (at most 40 with the start T₀). Rounded up to 52.
    /// </summary>
    internal const long BaseBytesPerSquare = 52;

    /// <summary>Smallest eigenvalue used in the whitening, relative to the largest: flatter directions are not amplified further.</summary>
    internal const double RelativeEigenFloor = 1e-6;

    private const double Armijo = 1e-4;
    private const int MaxHalvings = 40;
    private const float CosineEpsilon = 1e-8f;

    private readonly TokenRowStore _rows;
    private readonly CosineLoss _loss;
    private readonly int _chunk;
    private readonly Device _device;
    private readonly Plan _plan;
    private readonly List<Tensor> _steps = [];
    private readonly List<Tensor> _changes = [];
    private readonly List<double> _curvatures = [];
    private Tensor? _m, _m32, _s, _g, _direction; // the long-lived state, for the ledger
    private long _peakBytes;

    /// <summary>How many correction pairs the search keeps and in which dtype.</summary>
    /// <param name="History">Correction pairs kept (<see cref="MinHistory"/> to <see cref="MaxHistory"/>).</param>
    /// <param name="Float32Pairs">The pairs are stored in float32 (float64 otherwise); the iterate, the gradient and the recursion stay float64.</param>
    internal readonly record struct Plan(int History, bool Float32Pairs)
    {
        /// <summary>The full plan: <see cref="MaxHistory"/> float64 pairs.</summary>
        public static Plan Full => new(MaxHistory, false);

        /// <summary>The smallest plan: <see cref="MinHistory"/> float32 pairs.</summary>
        public static Plan Minimum => new(MinHistory, true);

        /// <summary>Upper bound of the search's working bytes at hidden size <paramref name="hiddenSize"/> (one pair more than kept: the new pair is formed before the oldest is dropped).</summary>
        public long BytesFor(int hiddenSize) => (BaseBytesPerSquare + 2L * (History + 1) * (Float32Pairs ? sizeof(float) : sizeof(double))) * hiddenSize * (long)hiddenSize;

        /// <summary>
        /// The largest plan whose working set fits in <paramref name="availableBytes"/>: <see cref="Full"/> when it fits
        /// (the results then equal the unbounded search's), else float32 pairs, as many as fit up to <see cref="MaxHistory"/>;
        /// null when not even <see cref="Minimum"/> fits.
        /// </summary>
        public static Plan? For(int hiddenSize, long availableBytes)
        {
            if (Full.BytesFor(hiddenSize) <= availableBytes) return Full;
            for (int history = MaxHistory; history >= MinHistory; history--)
                if (new Plan(history, true).BytesFor(hiddenSize) <= availableBytes) return new Plan(history, true);
            return null;
        }
    }

    public CosineLbfgs(TokenRowStore rows, CosineLoss loss, int chunkRows, Device device, Plan plan)
    {
        _rows = rows;
        _loss = loss;
        _chunk = chunkRows;
        _device = device;
        _plan = plan;
    }

    /// <summary>What the search did.</summary>
    /// <param name="Transform">The final T, float64 <c>[d, d]</c> on the fit's device.</param>
    /// <param name="Losses">The full-batch loss at the start and after each iteration.</param>
    /// <param name="Evaluations">Passes over the rows (loss and gradient), line-search trials included.</param>
    /// <param name="Converged">The loss stopped falling before the iteration limit.</param>
    /// <param name="PeakBytes">Most bytes of d×d tensors the search held at once (its own ledger, measured from the live tensors' sizes at each phase's peak).</param>
    internal sealed record Outcome(Tensor Transform, IReadOnlyList<double> Losses, int Evaluations, bool Converged, long PeakBytes);

    /// <summary>
    /// Runs at most <paramref name="iterations"/> iterations from <paramref name="start"/> (float64 <c>[d, d]</c>, disposed
    /// here once the search's start is formed), stopping when an iteration lowers the loss by less than
    /// <paramref name="tolerance"/> (absolute: the loss is a mean of 1 − cos, between 0 and 2) or the gradient vanishes.
    /// </summary>
    public Outcome Run(Tensor start, int iterations, double tolerance, Action<int, double>? afterIteration, CancellationToken cancellationToken)
    {
        // Long-lived tensors (M, S, the gradient, the direction, the correction pairs) are detached and disposed here;
        // every temporary lives in a per-call dispose scope, and the big ones are disposed as soon as they are used.
        try
        {
            Whitening(start); // M and S₀ = M⁻¹·T₀; T₀ disposed
            using (NewDisposeScope()) _m32 = _m!.to(ScalarType.Float32).DetachFromDisposeScope();
            int evaluations = 1;
            (double f, _g) = Evaluate(null, 0);
            var losses = new List<double> { f };
            bool converged = false;
            for (int k = 0; k < iterations; k++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double gradientNorm = Norm(_g);
                if (!(gradientNorm > 0)) { converged = true; break; }
                _direction = Direction(_g); // −H·g
                double slope = Dot(_g, _direction);
                if (!(slope < 0))
                {
                    // Not a descent direction (stale curvature pairs): forget them and take steepest descent.
                    ClearPairs();
                    _direction.copy_(_g);
                    HeldScalars.TimesInPlace(_direction, -1.0);
                    slope = -gradientNorm * gradientNorm;
                }
                // Without curvature pairs the step is scaled to move S by 1 % of its norm; with them it starts at 1.
                double rate = _steps.Count == 0 ? 0.01 * Math.Max(Norm(_s!), 1) / Norm(_direction) : 1.0;
                Tensor? nextGradient = null;
                double nextLoss = double.NaN;
                for (int h = 0; h <= MaxHalvings; h++, rate *= 0.5)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    nextGradient?.Dispose();
                    (nextLoss, nextGradient) = Evaluate(_direction, rate); // at S + rate·direction
                    evaluations++;
                    if (double.IsFinite(nextLoss) && nextLoss <= f + Armijo * rate * slope) break;
                }
                if (!(nextLoss < f))
                {
                    // No decrease even after the halvings: the loss is flat to rounding here.
                    nextGradient!.Dispose();
                    _direction.Dispose();
                    _direction = null;
                    converged = true;
                    break;
                }
                Accept(nextGradient!, rate);
                double drop = f - nextLoss;
                f = nextLoss;
                losses.Add(f);
                afterIteration?.Invoke(k + 1, f);
                if (drop < tolerance) { converged = true; break; }
            }
            using var final = NewDisposeScope();
            var transform = _m!.mm(_s!).MoveToOuterDisposeScope(); // T = M·S
            return new Outcome(transform, losses, evaluations, converged, _peakBytes);
        }
        finally
        {
            ClearPairs();
            _m?.Dispose();
            _m32?.Dispose();
            _s?.Dispose();
            _g?.Dispose();
            _direction?.Dispose();
        }
    }

    /// <summary>Takes the step S ← S + rate·direction with its gradient, and stores the correction pair (s, y) when its curvature is positive.</summary>
    private void Accept(Tensor nextGradient, double rate)
    {
        var pairType = _plan.Float32Pairs ? ScalarType.Float32 : ScalarType.Float64;
        Tensor step, change;
        using (NewDisposeScope())
        {
            step = HeldScalars.Times(_direction!, rate).to(pairType).DetachFromDisposeScope();            // sₖ
            change = HeldScalars.AddScaled(nextGradient, _g!, -1).to(pairType).DetachFromDisposeScope();  // yₖ
        }
        Ledger(nextGradient, step, change);
        HeldScalars.AddScaledInPlace(_s!, _direction!, rate);
        _direction!.Dispose();
        _direction = null;
        _g!.Dispose();
        _g = nextGradient;
        double curvature = Dot(step, change);
        if (curvature > 1e-12 * Dot(change, change))
        {
            _steps.Add(step);
            _changes.Add(change);
            _curvatures.Add(curvature);
            if (_steps.Count > _plan.History)
            {
                _steps[0].Dispose();
                _changes[0].Dispose();
                _steps.RemoveAt(0);
                _changes.RemoveAt(0);
                _curvatures.RemoveAt(0);
            }
        }
        else
        {
            step.Dispose();
            change.Dispose();
        }
    }

    private void ClearPairs()
    {
        foreach (var t in _steps) t.Dispose();
        foreach (var t in _changes) t.Dispose();
        _steps.Clear();
        _changes.Clear();
        _curvatures.Clear();
    }

    /// <summary>The L-BFGS two-loop recursion, in place on one float64 buffer: −H·g with H₀ = (sᵀy / yᵀy)·I from the newest pair.</summary>
    private Tensor Direction(Tensor g)
    {
        var q = g.clone(); // owned by the caller
        var alphas = new double[_steps.Count];
        for (int i = _steps.Count - 1; i >= 0; i--)
        {
            alphas[i] = Dot(_steps[i], q) / _curvatures[i];
            HeldScalars.AddScaledInPlace(q, _changes[i], -alphas[i]);
        }
        if (_steps.Count > 0)
            HeldScalars.TimesInPlace(q, _curvatures[^1] / Dot(_changes[^1], _changes[^1]));
        for (int i = 0; i < _steps.Count; i++)
        {
            double beta = Dot(_changes[i], q) / _curvatures[i];
            HeldScalars.AddScaledInPlace(q, _steps[i], alphas[i] - beta);
        }
        return HeldScalars.TimesInPlace(q, -1.0);
    }

    /// <summary>⟨a, b⟩ over all entries, in float64 (b may be float32).</summary>
    private static double Dot(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.mul(b).sum(ScalarType.Float64).item<double>();
    }

    private static double Norm(Tensor a)
    {
        using var scope = NewDisposeScope();
        return a.norm().item<double>();
    }

    /// <summary>Adds the bytes of the long-lived state and of <paramref name="transient"/> to the ledger's peak.</summary>
    private void Ledger(params Tensor?[] transient)
    {
        static long Bytes(Tensor? t) => t is null || t.IsInvalid ? 0 : t.NumberOfElements * t.ElementSize;
        long live = Bytes(_m) + Bytes(_m32) + Bytes(_s) + Bytes(_g) + Bytes(_direction);
        foreach (var t in _steps) live += Bytes(t);
        foreach (var t in _changes) live += Bytes(t);
        foreach (var t in transient) live += Bytes(t);
        _peakBytes = Math.Max(_peakBytes, live);
    }

    /// <summary>
    /// Mean cosine loss over all stored rows and its gradient with respect to S (float64 <c>[d, d]</c>, owned by the caller)
    /// at S + <paramref name="rate"/>·<paramref name="direction"/> (at S when <paramref name="direction"/> is null), T = M·S.
    /// T is formed once in float32 and its gradient accumulated over the chunks; ∂/∂S = Mᵀ·∂/∂T at the end.
    /// </summary>
    private (double Loss, Tensor Gradient) Evaluate(Tensor? direction, double rate)
    {
        using var scope = NewDisposeScope();
        Tensor transform; // T, float32 [d, d], a leaf that collects the chunks' gradients
        using (NewDisposeScope())
        {
            var point = direction is null ? _s!.to(ScalarType.Float32) : HeldScalars.AddScaled(_s!, direction, rate).to(ScalarType.Float32); // S, [d, d]
            transform = _m32!.mm(point).requires_grad_(true).MoveToOuterDisposeScope();
        }
        double total = 0;
        long rows = _rows.RowsStored;
        foreach (var batch in _rows.Batches(_chunk, _device, shuffleSeed: null))
        {
            try
            {
                using var inner = NewDisposeScope();
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
        var gradientOfT = transform.grad!; // [d, d] float32
        Ledger(transform, gradientOfT, gradientOfT); // T, its gradient and autograd's last product, at the passes' peak
        transform.Dispose();
        var gradient32 = _m32!.t().mm(gradientOfT); // ∂/∂S = Mᵀ·∂/∂T
        gradientOfT.Dispose();
        var gradient = gradient32.to(ScalarType.Float64).DetachFromDisposeScope(); // owned by the caller
        Ledger(gradient32, gradient);
        return (1 - total / rows, gradient);
    }

    /// <summary>
    /// M = V·diag(1/√max(λ, δ)) from the eigen-decomposition of the row-weighted Gram matrix, and S₀ = M⁻¹·T₀ =
    /// diag(√max(λ, δ))·Vᵀ·T₀ (both detached, kept in the state); disposes <paramref name="start"/>.
    /// </summary>
    private void Whitening(Tensor start)
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
        Ledger(start, gram, vectors, vectors, vectors); // T₀, the Gram matrix, V and LAPACK's workspace (2·d² float64)
        gram.Dispose();
        double largest = eigenvalues[-1].item<double>();
        double floor = largest > 0 && double.IsFinite(largest) ? largest * RelativeEigenFloor : 1;
        var root = HeldScalars.ClampMin(eigenvalues, floor).sqrt(); // [d]
        var t0 = start.to(ScalarType.Float64, _device);
        _s = vectors.t().mm(t0).mul_(root.unsqueeze(1)).DetachFromDisposeScope(); // S₀ = diag(√λ)·Vᵀ·T₀
        if (!ReferenceEquals(t0, start)) t0.Dispose();
        start.Dispose();
        _m = vectors.div_(root.unsqueeze(0)).DetachFromDisposeScope(); // M = V·diag(1/√λ), in place
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
