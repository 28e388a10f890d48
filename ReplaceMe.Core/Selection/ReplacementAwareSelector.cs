using System.Globalization;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// Beyond the paper: chooses the cut whose <em>repaired</em> model is best. For every candidate start s of a cut of
/// n blocks it fits the transform T with the given estimator (all candidates from one shared pass over
/// <see cref="SelectionRequest.Calibration"/>), then scores the pruned model — blocks <c>[0, s)</c>, then
/// <c>Y + M·T</c> in place of the output of block <c>s + n − 1</c>, then blocks <c>[s + n, L)</c> and the head — by its
/// mean next-token negative log-likelihood on <see cref="SelectionRequest.HeldOut"/>. The lowest loss wins.
/// </summary>
/// <remarks>
/// <para>Why: the distance between the states around a cut measures how much the removed blocks change the residual
/// stream, not how much of that change a linear map can restore. A cut with a large but linear effect is cheap to
/// replace; a cut with a small but non-linear effect may not be. (On stories15M, removing 2 blocks, the
/// angular-distance cut gave perplexity about 20 % worse than the best cut after least squares.)</para>
/// <para>The real model is never modified: the pruned model is simulated through the adapter. The held-out pass runs
/// the original model once per batch and branches off at each candidate's fold block, so a batch costs one full
/// forward plus, per candidate, the blocks after its cut and the head. Memory holds every candidate's fit at once
/// (for least squares 2·d² float64 each); <c>topK</c> limits the candidates to the k best by
/// <see cref="SelectionRequest.Profile"/> distance.</para>
/// <para>Several cuts (CutCount &gt; 1) are chosen greedily and sequentially: round r scores the candidates on the model
/// with the r − 1 cuts already chosen removed and their transforms folded in (re-fitting T on that model, as the
/// pipeline estimates sequentially), and keeps the best. A candidate must be contiguous in the original model, so it
/// never straddles an earlier cut; it may touch one (then its transform composes with the earlier one at the same fold
/// block). With <see cref="SelectionRequest.MergeAdjacent"/> touching cuts are fused afterwards, and the fused cut is
/// re-estimated as one by the pipeline, which this selector did not score. <see cref="LayerSelection.Scores"/> holds
/// the first round's held-out loss per start (the model with nothing removed).</para>
/// </remarks>
public sealed class ReplacementAwareSelector : ILayerSelector
{
    private readonly ITransformEstimator? _estimator;
    private readonly int? _topK;

    /// <summary>Creates the selector.</summary>
    /// <param name="estimator">Fits T for each candidate; null uses the pipeline's estimator (<see cref="SelectionRequest.Estimator"/>).</param>
    /// <param name="topK">Score only the k candidates with the smallest profile distance; null scores every start.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topK"/> is less than 1.</exception>
    public ReplacementAwareSelector(ITransformEstimator? estimator = null, int? topK = null)
    {
        if (topK is < 1) throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be at least 1 (or null for every candidate).");
        TorchRuntime.EnsureLoaded();
        _estimator = estimator;
        _topK = topK;
    }

    /// <inheritdoc/>
    public string Name => "replacement-aware";

    /// <inheritdoc/>
    public bool NeedsHeldOut => true;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Settings => new Dictionary<string, object?>
    {
        ["top_k"] = _topK,
        ["estimator"] = _estimator?.Name ?? "the pipeline's",
    };

    /// <inheritdoc/>
    public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
    {
        CutPlanning.ValidateRequest(request, Name);
        if (_topK is not null) CutPlanning.ValidateProfile(request, Name);
        RequireTokens(request.Calibration, "Calibration", "fit the transforms");
        RequireTokens(request.HeldOut, "HeldOut", "score the pruned models");
        var context = request.Estimation ?? new EstimationContext();
        var estimator = _estimator ?? request.Estimator
            ?? throw new ArgumentException($"Selector '{Name}' needs an estimator: give one to its constructor or in SelectionRequest.Estimator.", nameof(request));
        int n = request.BlocksPerCut;

        var chosen = new List<BlockCut>();
        var solved = new Dictionary<BlockCut, TransformEstimate>();
        var rounds = new List<string>();
        IReadOnlyDictionary<int, double>? firstScores = null;
        var view = new ReplacedModelView(request.Model);
        try
        {
            for (int round = 0; round < request.CutCount; round++)
            {
                var candidates = Candidates(view, request, n);
                if (candidates.Count == 0)
                    throw new PruningException($"Selector '{Name}': no contiguous cut of {n} blocks is left after choosing {string.Join(", ", chosen)}; ask for fewer or shorter cuts.");
                // Round 1 on the unmodified model uses the fits the pipeline fed during its profile pass, when it did.
                var scoring = new CandidateScoring(view, estimator, context, n, candidates, round == 0 ? request.Prepass : null);
                try
                {
                    scoring.Fit(request.Calibration, cancellationToken);
                    var losses = scoring.Score(request.HeldOut, cancellationToken);
                    int best = losses.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key).First().Key;
                    var originalCut = view.OriginalCut(best, n)!.Value;
                    // Its T was fitted on the model unchanged up to the cut's last block when every cut removed so far
                    // lies beyond it (a fold at the cut's last block would change the target): the pipeline can reuse it.
                    if (ReferenceEquals(estimator, request.Estimator) && chosen.TrueForAll(c => c.Start > originalCut.End))
                        solved[originalCut] = scoring.TakeEstimate(best);
                    chosen.Add(originalCut);
                    firstScores ??= losses.ToDictionary(kv => view.OriginalCut(kv.Key, n)!.Value.Start, kv => kv.Value);
                    rounds.Add(string.Create(CultureInfo.InvariantCulture, $"{originalCut} (held-out loss {losses[best]:G5} of {losses.Count} candidates)"));
                    var next = view.Without(best, n, scoring.Transform(best));
                    view.Dispose();
                    view = next;
                }
                finally
                {
                    scoring.Dispose();
                }
                context.Progress?.Report(new PruningProgress("select", (double)(round + 1) / request.CutCount, chosen[^1].Start, Message: rounds[^1]));
            }
        }
        catch
        {
            foreach (var e in solved.Values) e.Transform?.Dispose();
            throw;
        }
        finally
        {
            view.Dispose();
        }
        var cuts = CutPlanning.SortAndMerge(chosen, request.MergeAdjacent);
        string description = $"replacement-aware ({estimator.Name}), n = {n}: {string.Join("; then ", rounds)}"
            + (cuts.Count != chosen.Count ? $"; merged into {string.Join(", ", cuts)}" : "");
        return new LayerSelection(cuts, firstScores!, description) { Solved = solved };
    }

    /// <summary>The candidate limit, null for every start.</summary>
    internal int? TopK => _topK;

    /// <summary>True when the selector fits with the pipeline's estimator (it was given none of its own).</summary>
    internal bool UsesPipelineEstimator => _estimator is null;

    /// <summary>Virtual starts of contiguous cuts of n blocks in the current view, limited to the top k by profile distance.</summary>
    private List<int> Candidates(ReplacedModelView view, SelectionRequest request, int n)
    {
        var starts = new List<int>();
        for (int s = 1; s + n <= view.BlockCount; s++)
            if (view.OriginalCut(s, n) is not null) starts.Add(s);
        if (_topK is not int k || starts.Count <= k) return starts;
        return [.. starts
            .OrderBy(s => request.Profile[view.OriginalCut(s, n)!.Value.Start, n])
            .ThenBy(s => s)
            .Take(k)
            .Order()];
    }

    private void RequireTokens(IReadOnlyList<TokenBatch>? batches, string name, string purpose)
    {
        if (batches is null || batches.Count == 0 || batches.All(b => b.TokenCount == 0))
            throw new PruningException($"Selector '{Name}' needs request.{name} batches with real tokens to {purpose}.");
    }
}
