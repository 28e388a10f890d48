using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// The transform fits of several candidate cuts of the unmodified model, fed during the distance-profile pass
/// (<see cref="DistanceProfiler"/> walks the model block by block; this object takes X = M_{s−1}, Y = L_{s−1} − M_{s−1}
/// at each candidate's fold block and the target L_{e−1} at its last block, at every real token). The rows and their
/// order are those a separate pass up to the cut would feed, so a fit completed from here gives the same T as the
/// pipeline's second pass did. Owns the fits that were not taken.
/// </summary>
internal sealed class CandidateStatistics : IDisposable
{
    private readonly Dictionary<BlockCut, ITransformFit> _fits = [];
    private readonly Dictionary<int, int> _lastUse = [];                 // fold block -> last block that needs its rows
    private readonly Dictionary<int, (Tensor X, Tensor Y)> _pending = [];  // fold block -> rows [N, d] of this batch
    private Tensor? _select;                                              // [N] flat indices of real tokens, this batch
    private int _batch;

    public CandidateStatistics(ITransformEstimator estimator, IReadOnlyList<BlockCut> candidates, int hiddenSize, EstimationContext context)
    {
        try
        {
            foreach (var cut in candidates)
            {
                _fits[cut] = estimator.Begin(cut, hiddenSize, context);
                _lastUse[cut.FoldBlock] = Math.Max(_lastUse.GetValueOrDefault(cut.FoldBlock, -1), cut.End - 1);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Candidates whose fits are still held.</summary>
    public IReadOnlyCollection<BlockCut> Candidates => _fits.Keys;

    /// <summary>
    /// Bytes one candidate's streamed statistics hold with <paramref name="estimator"/>, or null when the estimator keeps
    /// rows (or is unknown) and so cannot be fed for many candidates at once within a fixed budget.
    /// </summary>
    public static long? BytesPerCandidate(ITransformEstimator estimator, int hiddenSize) => estimator switch
    {
        LeastSquaresEstimator ls => 2L * hiddenSize * hiddenSize * sizeof(double) + DiagnosticSample.BytesFor(hiddenSize, ls.Options.DiagnosticRows),
        IdentityEstimator id => DiagnosticSample.BytesFor(hiddenSize, id.DiagnosticRows),
        _ => null,
    };

    /// <summary>True when block <paramref name="block"/>'s MLP output is needed (it is a candidate's fold block).</summary>
    public bool WantsMlpOutput(int block) => _lastUse.ContainsKey(block);

    /// <summary>Starts a calibration batch; <paramref name="mask"/> <c>[B, T]</c> on the model's device.</summary>
    public void BeginBatch(Tensor mask)
    {
        EndBatch();
        _batch++;
        _select = ValidTokens.FlatIndex(mask, mask.device).DetachFromDisposeScope();
    }

    /// <summary>
    /// After block <paramref name="block"/> ran: <paramref name="hidden"/> is its output <c>[B, T, d]</c>;
    /// <paramref name="activations"/> its capture when <see cref="WantsMlpOutput"/> said so.
    /// </summary>
    public void AfterBlock(int block, Tensor hidden, BlockActivations? activations)
    {
        if (_select is null || _select.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        if (activations is not null && _lastUse.ContainsKey(block))
        {
            var x = ValidTokens.Rows(activations.MlpOutput, _select);                 // [N, d]
            var y = ValidTokens.Rows(activations.Output, _select).sub_(x);           // [N, d]
            _pending[block] = (x.DetachFromDisposeScope(), y.DetachFromDisposeScope());
        }
        Tensor? target = null;
        foreach (var (cut, fit) in _fits)
        {
            if (cut.End - 1 != block || !_pending.TryGetValue(cut.FoldBlock, out var rows)) continue;
            target ??= ValidTokens.Rows(hidden, _select);                           // [N, d]
            try { fit.Accumulate(rows.X, rows.Y, target); }
            catch (PruningException ex)
            {
                throw new PruningException($"{ex.Message} (fitting candidate cut {cut} during the profile pass, calibration batch {_batch}; " +
                    "check the model's dtype, float16 overflows, and its weights)", ex);
            }
        }
        foreach (var fold in _pending.Keys.Where(f => _lastUse[f] <= block).ToList())
        {
            _pending.Remove(fold, out var done);
            done.X.Dispose();
            done.Y.Dispose();
        }
    }

    /// <summary>Ends the batch (releases its rows).</summary>
    public void EndBatch()
    {
        foreach (var (x, y) in _pending.Values)
        {
            x.Dispose();
            y.Dispose();
        }
        _pending.Clear();
        _select?.Dispose();
        _select = null;
    }

    /// <summary>Hands over the fit of <paramref name="cut"/> (the caller disposes it), or null when it is not held.</summary>
    public ITransformFit? Take(BlockCut cut) => _fits.Remove(cut, out var fit) ? fit : null;

    public void Dispose()
    {
        EndBatch();
        foreach (var fit in _fits.Values) fit.Dispose();
        _fits.Clear();
    }
}
