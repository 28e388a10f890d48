using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// One round of <see cref="ReplacementAwareSelector"/>: fits T for every candidate cut of a view from one shared
/// calibration pass, then measures each repaired model's held-out next-token loss. Candidates are virtual starts.
/// </summary>
internal sealed class CandidateScoring : IDisposable
{
    private readonly ReplacedModelView _view;
    private readonly int _length;
    private readonly List<int> _starts;
    private readonly Dictionary<int, ITransformFit> _fits = [];
    private readonly Dictionary<int, Tensor?> _transforms = [];     // start -> T [d, d] on the model device (null = identity)
    private readonly Dictionary<int, TransformEstimate> _estimates = []; // start -> the fit's result (T float64 on CPU)
    private readonly bool _prefilled;

    /// <param name="view">The model as the earlier rounds left it.</param>
    /// <param name="estimator">Fits T.</param>
    /// <param name="context">Estimation settings.</param>
    /// <param name="length">n.</param>
    /// <param name="starts">Virtual candidate starts.</param>
    /// <param name="prefilled">Fits already fed during the profile pass (only for a view with nothing removed); used
    /// when they cover every candidate, in which case <see cref="Fit"/> runs no pass of its own.</param>
    public CandidateScoring(ReplacedModelView view, ITransformEstimator estimator, EstimationContext context, int length, List<int> starts,
        CandidateStatistics? prefilled = null)
    {
        _view = view;
        _length = length;
        _starts = starts;
        _prefilled = prefilled is not null && view.BlockCount == view.Model.BlockCount
            && starts.TrueForAll(s => prefilled.Candidates.Contains(new BlockCut(s, s + length)));
        foreach (int s in starts)
            _fits[s] = (_prefilled ? prefilled!.Take(new BlockCut(s, s + length)) : null)
                ?? estimator.Begin(new BlockCut(s, s + length), view.Model.HiddenSize, context);
    }

    /// <summary>True when the fits came from the profile pass.</summary>
    public bool Prefilled => _prefilled;

    private ITransformerAdapter Model => _view.Model;

    /// <summary>Streams every candidate's (X, Y, target) rows at real tokens into its fit, then solves all fits.</summary>
    public void Fit(IReadOnlyList<TokenBatch> batches, CancellationToken cancellationToken)
    {
        if (!_prefilled) Accumulate(batches, cancellationToken);
        foreach (var (s, fit) in _fits)
        {
            var estimate = fit.Complete(cancellationToken);
            _estimates[s] = estimate;
            var fitted = estimate.Transform;                                     // [d, d] float64 on CPU, or null
            _transforms[s] = fitted?.to(ScalarType.Float32, Model.Device, copy: true).DetachFromDisposeScope();
        }
    }

    private void Accumulate(IReadOnlyList<TokenBatch> batches, CancellationToken cancellationToken)
    {
        var foldBlocks = _starts.Select(s => s - 1).ToHashSet();
        int lastBlock = _starts.Max() + _length - 1;
        using var noGrad = no_grad();
        foreach (var batch in batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var ids = batch.InputIds.to(Model.Device);                        // [B, T]
            var mask = batch.AttentionMask.to(Model.Device);                  // [B, T]
            var select = ValidTokens.FlatIndex(mask, mask.device);               // [N]
            if (select.shape[0] == 0) continue;
            var pending = new Dictionary<int, (Tensor X, Tensor Y)>();         // fold block -> rows [N, d]
            using var state = _view.Embed(ids, mask);
            for (int v = 0; v <= lastBlock; v++)
            {
                if (foldBlocks.Contains(v))
                {
                    using var capture = new ActivationCapture([v]);
                    _view.RunBlocks(state, v, v + 1, capture);
                    var a = capture[v];
                    pending[v] = (ValidTokens.Rows(a.MlpOutput, select), ValidTokens.Rows(a.Output, select) - ValidTokens.Rows(a.MlpOutput, select));
                }
                else
                {
                    _view.RunBlocks(state, v, v + 1);
                }
                int start = v - _length + 1;                                  // candidate whose last removed block is v
                if (_fits.TryGetValue(start, out var fit) && pending.Remove(start - 1, out var rows))
                {
                    fit.Accumulate(rows.X, rows.Y, ValidTokens.Rows(state.Hidden, select));
                    rows.X.Dispose();
                    rows.Y.Dispose();
                }
            }
        }
    }

    /// <summary>The fitted T of a candidate (null = identity), owned by this object.</summary>
    public Tensor? Transform(int start) => _transforms[start];

    /// <summary>Hands over a candidate's fit result (T float64 on CPU and its report); the caller disposes its transform.</summary>
    public TransformEstimate TakeEstimate(int start)
    {
        _estimates.Remove(start, out var estimate);
        return estimate ?? throw new InvalidOperationException($"Candidate {start} has no fit result to hand over.");
    }

    /// <summary>Mean next-token NLL of each candidate's repaired model over the real next-token positions of <paramref name="batches"/>.</summary>
    /// <exception cref="PruningException">No position with a real next token.</exception>
    public Dictionary<int, double> Score(IReadOnlyList<TokenBatch> batches, CancellationToken cancellationToken)
    {
        var sums = _starts.ToDictionary(s => s, _ => 0.0);
        long count = 0;
        int lastFold = _starts.Max() - 1;
        using var noGrad = no_grad();
        foreach (var batch in batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var ids = batch.InputIds.to(Model.Device);                        // [B, T]
            var mask = batch.AttentionMask.to(Model.Device);                  // [B, T]
            var (predictors, targets) = ValidTokens.NextTokenPairs(mask);  // [P], [P]
            if (predictors.shape[0] == 0) continue;
            count += predictors.shape[0];
            var targetIds = ids.reshape(-1).index_select(0, targets);         // [P]
            using var state = _view.Embed(ids, mask);
            for (int v = 0; v <= lastFold; v++)
            {
                int start = v + 1;
                if (!_transforms.TryGetValue(start, out var t))
                {
                    _view.RunBlocks(state, v, v + 1);
                    continue;
                }
                using var capture = new ActivationCapture([v]);
                _view.RunBlocks(state, v, v + 1, capture);
                var a = capture[v];
                var replaced = t is null ? a.Output.clone() : HeldScalars.Sum(a.AttentionResidual(), a.MlpOutput.matmul(t)); // Y + M·T, [B, T, d]
                sums[start] += BranchLoss(replaced, ids, mask, start + _length, predictors, targetIds);
            }
        }
        if (count == 0)
            throw new PruningException("The held-out batches have no position whose next token is real (every sequence has length 1).");
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value / count);
    }

    /// <summary>Runs the rest of the view from <paramref name="resume"/> on a replaced state and returns the summed NLL.</summary>
    private double BranchLoss(Tensor replaced, Tensor ids, Tensor mask, int resume, Tensor predictors, Tensor targetIds)
    {
        using var scope = NewDisposeScope();
        using var branch = _view.Embed(ids, mask);
        branch.Hidden = replaced.to(branch.Hidden.dtype);
        _view.RunBlocks(branch, resume, _view.BlockCount);
        var logits = _view.Head(branch);                                      // [B, T, V]
        var rows = logits.reshape(-1, logits.shape[^1]).index_select(0, predictors).to(ScalarType.Float32); // [P, V]
        var logProbs = nn.functional.log_softmax(rows, 1);                    // [P, V]
        var picked = logProbs.gather(1, targetIds.unsqueeze(1));              // [P, 1]
        return -picked.to(ScalarType.Float64).sum().item<double>();
    }

    public void Dispose()
    {
        foreach (var fit in _fits.Values) fit.Dispose();
        foreach (var t in _transforms.Values) t?.Dispose();
        foreach (var e in _estimates.Values) e.Transform?.Dispose();
        _estimates.Clear();
        _fits.Clear();
        _transforms.Clear();
    }
}
