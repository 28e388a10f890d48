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
    private readonly Dictionary<int, Lane> _lanes = [];                   // calibration batch -> its rows in flight
    private Lane? _lane;                                                  // the batch AfterBlock feeds
    private int _batch;

    /// <summary>One calibration batch's real-token indices and the fold-block rows still waiting for their target.</summary>
    private sealed class Lane(Tensor select, int number)
    {
        public Tensor Select { get; } = select;                          // [N] flat indices of real tokens
        public int Number { get; } = number;                             // 1-based, for messages
        public Dictionary<int, (Tensor X, Tensor Y)> Pending { get; } = []; // fold block -> rows [N, d]

        public void Dispose()
        {
            foreach (var (x, y) in Pending.Values)
            {
                x.Dispose();
                y.Dispose();
            }
            Pending.Clear();
            Select.Dispose();
        }
    }

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

    /// <summary>Starts a calibration batch (batch-major: one batch at a time); <paramref name="mask"/> <c>[B, T]</c> on the model's device.</summary>
    public void BeginBatch(Tensor mask)
    {
        EndBatch();
        BeginLane(0, mask);
        UseLane(0);
    }

    /// <summary>Registers calibration batch <paramref name="lane"/> for a block-major pass (every batch's rows are in flight at once).</summary>
    public void BeginLane(int lane, Tensor mask)
    {
        if (_lanes.Remove(lane, out var old)) old.Dispose();
        _batch++;
        _lanes[lane] = new Lane(ValidTokens.FlatIndex(mask, mask.device).DetachFromDisposeScope(), _batch);
    }

    /// <summary>Makes <see cref="AfterBlock"/> feed the rows of batch <paramref name="lane"/>.</summary>
    public void UseLane(int lane) => _lane = _lanes[lane];

    /// <summary>
    /// After block <paramref name="block"/> ran on the current batch: <paramref name="hidden"/> is its output <c>[B, T, d]</c>;
    /// <paramref name="activations"/> its capture when <see cref="WantsMlpOutput"/> said so.
    /// </summary>
    public void AfterBlock(int block, Tensor hidden, BlockActivations? activations)
    {
        var lane = _lane;
        if (lane is null || lane.Select.shape[0] == 0) return;
        var select = lane.Select;
        var pending = lane.Pending;
        using var scope = NewDisposeScope();
        if (activations is not null && _lastUse.ContainsKey(block))
        {
            var x = ValidTokens.Rows(activations.MlpOutput, select);                 // [N, d]
            var y = ValidTokens.Rows(activations.Output, select).sub_(x);           // [N, d]
            pending[block] = (x.DetachFromDisposeScope(), y.DetachFromDisposeScope());
        }
        Tensor? target = null;
        foreach (var (cut, fit) in _fits)
        {
            if (cut.End - 1 != block || !pending.TryGetValue(cut.FoldBlock, out var rows)) continue;
            target ??= ValidTokens.Rows(hidden, select);                           // [N, d]
            try { fit.Accumulate(rows.X, rows.Y, target); }
            catch (PruningException ex)
            {
                throw new PruningException($"{ex.Message} (fitting candidate cut {cut} during the profile pass, calibration batch {lane.Number}; " +
                    "check the model's dtype, float16 overflows, and its weights)", ex);
            }
        }
        foreach (var fold in pending.Keys.Where(f => _lastUse[f] <= block).ToList())
        {
            pending.Remove(fold, out var done);
            done.X.Dispose();
            done.Y.Dispose();
        }
    }

    /// <summary>Ends every batch (releases their rows).</summary>
    public void EndBatch()
    {
        foreach (var lane in _lanes.Values) lane.Dispose();
        _lanes.Clear();
        _lane = null;
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
