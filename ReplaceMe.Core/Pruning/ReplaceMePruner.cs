using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// The ReplaceMe pipeline: one calibration pass profiles the distances for every start and every n up to a maximum,
/// a selector chooses the cut(s), and then, for each cut in ascending order on the already-pruned model, the
/// estimator fits T on valid tokens (from the statistics of the profile pass for the first cut where possible, otherwise
/// from a pass up to the last block the cut needs) and the surgeon folds T into block <c>start − 1</c> and removes
/// <c>[start, end)</c> (docs/method.md, with the fixes of its last section).
/// </summary>
/// <remarks>
/// <para>The model is modified in place, all or nothing: until every cut is fitted, the pipeline works on a view of the
/// model that skips removed blocks (computing exactly what the pruned model computes) and folds transforms into the
/// real down-projections after saving a copy of each (one <c>d × d_ff</c> matrix per cut). Only when every cut succeeded
/// are the blocks removed. If the run fails or is cancelled, the saved weights are copied back and nothing is removed:
/// the caller's model is bit-for-bit as it was. Nothing is written to disk until
/// <see cref="PruningResult.Save(string, bool, CancellationToken)"/>.</para>
/// <para>The work is counted in <see cref="PruningResult.ForwardEquivalents"/>: with least squares (or identity) and a
/// selector whose first cut is one of a known set, the profile pass also feeds every candidate's statistics
/// (<see cref="PruningOptions.StatisticsBudgetBytes"/>), so the first cut needs no pass of its own; later cuts of a
/// multi-cut run depend on the earlier surgery and are fitted in their own passes up to the cut.</para>
/// </remarks>
public sealed class ReplaceMePruner
{
    private readonly IModelSurgeon _surgeon;

    /// <summary>Creates the pipeline.</summary>
    /// <param name="surgeon">How cuts are applied; null uses <see cref="ModelSurgeon"/>.</param>
    public ReplaceMePruner(IModelSurgeon? surgeon = null)
    {
        TorchRuntime.EnsureLoaded();
        _surgeon = surgeon ?? new ModelSurgeon();
    }

    /// <summary>Tokenizes <paramref name="documents"/> (<see cref="PruningOptions.BatchSize"/>,
    /// <see cref="PruningOptions.MaxLength"/>, right padding) and prunes with them.</summary>
    /// <inheritdoc cref="Prune(ITransformerAdapter, IReadOnlyList{TokenBatch}, PruningOptions, IProgress{PruningProgress}, ILogger, CancellationToken)"/>
    public PruningResult Prune(
        ITransformerAdapter model, IReadOnlyList<string> documents, ITextTokenizer tokenizer, PruningOptions options,
        IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        if (documents.Count == 0) throw new PruningException("No calibration documents were given.");
        using var batches = CalibrationBatches.Tokenize(documents, tokenizer, options.BatchSize, options.MaxLength);
        return Prune(model, batches, options, progress, logger, cancellationToken);
    }

    /// <summary>Prunes <paramref name="model"/> in place.</summary>
    /// <param name="model">The model (any <see cref="ITransformerAdapter"/>).</param>
    /// <param name="calibration">Calibration batches (only positions with mask 1 are used). The last
    /// <see cref="PruningOptions.HeldOutFraction"/> of them are held out when the selector scores on held-out data.</param>
    /// <param name="options">What to remove and how.</param>
    /// <param name="progress">Receives stage records ("profile", "select", "estimate", "surgery").</param>
    /// <param name="logger">Log sink.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <returns>The result; the model inside it is <paramref name="model"/>, now pruned.</returns>
    /// <exception cref="ArgumentException">Options out of range or contradictory.</exception>
    /// <exception cref="PruningException">Too many blocks requested, a cut at block 0, empty or too little calibration data,
    /// non-finite activations (the block is named) or a non-finite transform.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public PruningResult Prune(
        ITransformerAdapter model, IReadOnlyList<TokenBatch> calibration, PruningOptions options,
        IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        var total = Stopwatch.StartNew();
        int originalBlocks = model.BlockCount;
        int n = options.ResolveBlocksPerCut(originalBlocks);
        if (calibration.Count == 0) throw new PruningException("The calibration set is empty: give at least one batch of text.");
        long calibrationTokens = calibration.Sum(b => b.TokenCount);
        if (calibrationTokens == 0) throw new PruningException("The calibration batches contain no valid token (every attention-mask entry is 0).");
        using var threads = options.Threads is int threadCount ? TorchThreads.Use(threadCount) : null;

        var estimator = options.Estimator;
        var selector = options.Selector;
        var (fit, heldOut) = selector.NeedsHeldOut
            ? CalibrationBatches.Split(calibration, options.HeldOutFraction)
            : (calibration, Array.Empty<TokenBatch>());
        if (selector.NeedsHeldOut && heldOut.Count == 0)
            throw new PruningException($"The {selector.Name} selector scores candidates on held-out data: give HeldOutFraction > 0 and at least 2 calibration batches (got {calibration.Count} batch(es), fraction {options.HeldOutFraction}).");
        PruningLog.Start(logger, originalBlocks, n, options.CutCount, selector.Name, estimator.Name, calibration.Count, calibrationTokens, heldOut.Count);
        var fingerprint = CalibrationBatches.Fingerprint(calibration);
        var context = new EstimationContext(options.EstimationDevice ?? model.Device, options.Seed, options.MemoryBudgetBytes, logger, progress);
        var timings = new Dictionary<string, TimeSpan>();
        // The cosine fit checks its memory budget when it begins (its L-BFGS working set has a minimum): begin one here,
        // before any pass, so a budget it cannot work in fails at once rather than after the profile pass. Nothing is
        // allocated until rows arrive.
        if (estimator is CosineEstimator)
            using (estimator.Begin(new BlockCut(1, 1 + n), model.HiddenSize, context)) { }
        // Every stage sees the model through this view: removals wait until every cut is fitted (all-or-nothing), and
        // the blocks run are counted.
        var staged = new StagedModel(model);

        // 1. Distance profile for every start and n = 1..max, one pass; in the same pass, the candidates' fits when the
        //    estimator streams fixed-size statistics and they fit the budget.
        var stage = Stopwatch.StartNew();
        progress?.Report(new PruningProgress("profile", 0, Message: "measuring distances between block outputs"));
        int maxLength = Math.Min(Math.Max(options.MaxDistanceLength ?? n, n), originalBlocks - 1);
        var blockMajor = options.BlockMajor ?? model is StreamedDecoderModel
            ? new BlockMajorSettings(options.HiddenStateBudgetBytes, options.SpillDirectory, options.SpillDType)
            : null;
        if (blockMajor is not null)
        {
            long budgetMiB = options.HiddenStateBudgetBytes >> 20;
            string spillFolder = options.SpillDirectory ?? Path.GetTempPath();
            PruningLog.BlockMajor(logger, budgetMiB, spillFolder);
        }
        var profiler = new DistanceProfiler(logger);
        var profileDriver = profiler.Driver(blockMajor, options.DistanceTokens, fit, maxLength, staged.HiddenSize);
        using var statistics = PlanStatistics(staged, options, n, fit, context, logger, profileDriver is not null);
        var profile = profiler.Measure(staged, fit, maxLength, selector.ProfileMetric, options.DistanceTokens, statistics, profileDriver, progress, cancellationToken);
        timings["profile"] = stage.Elapsed;

        // 2. Selection (original indices).
        stage.Restart();
        progress?.Report(new PruningProgress("select", 0, Message: selector.Name));
        var request = new SelectionRequest(staged, profile, n, options.CutCount, options.MergeAdjacent, fit, heldOut, context, estimator) { Prepass = statistics };
        var selection = selector.ChooseCuts(request, cancellationToken);
        var solved = new Dictionary<BlockCut, TransformEstimate>(selection.Solved ?? new Dictionary<BlockCut, TransformEstimate>());

        // 3. Sequential estimation and surgery on the already-pruned model (docs/method.md, "Multiple cuts"). Folds go
        //    into the real weights (saved first); removals are applied once every cut is fitted, or not at all.
        var outcomes = new List<CutOutcome>();
        var estimate = TimeSpan.Zero;
        var surgery = TimeSpan.Zero;
        List<BlockCut> cuts;
        try
        {
            cuts = selection.Cuts.OrderBy(c => c.Start).ToList();
            ValidateSelection(cuts, originalBlocks, selector.Name);
            timings["select"] = stage.Elapsed;
            string cutsText = string.Join(" ", cuts);
            PruningLog.Selected(logger, cutsText, selection.Description);
            int removed = 0;
            foreach (var cut in cuts)
            {
                var applied = new BlockCut(cut.Start - removed, cut.End - removed);
                stage.Restart();
                // The first cut sees the unmodified model: a fit the selector solved or the profile pass fed serves as is.
                var result = removed == 0 ? Reuse(cut, solved, statistics, progress, cancellationToken) : null;
                result ??= CutFitter.Fit(staged, applied, cut, estimator, fit, context, blockMajor, progress, cancellationToken);
                estimate += stage.Elapsed;
                outcomes.Add(new CutOutcome(cut, applied, result.Report, result.Transform));
                LogEstimate(logger, cut, applied, result.Report);

                stage.Restart();
                progress?.Report(new PruningProgress("surgery", null, cut.Start, Message: $"folding T into block {applied.FoldBlock}, removing {applied}"));
                _surgeon.Apply(staged, applied, result.Transform);
                surgery += stage.Elapsed;
                removed += cut.Length;
                progress?.Report(new PruningProgress("surgery", 1.0, cut.Start, Message: $"cut {cut} fitted and folded; {staged.BlockCount} blocks left"));
            }
            cancellationToken.ThrowIfCancellationRequested();
            staged.Commit();
        }
        catch
        {
            staged.Rollback();
            foreach (var o in outcomes) o.Transform?.Dispose();
            throw;
        }
        finally
        {
            foreach (var left in solved.Values) left.Transform?.Dispose();
        }
        timings["estimate"] = estimate;
        timings["surgery"] = surgery;
        timings["total"] = total.Elapsed;
        long positions = calibration.Sum(b => b.InputIds.shape[0] * b.InputIds.shape[1]);
        double passes = (double)staged.BlockPositions / ((double)originalBlocks * positions);
        string passDetail = $"{staged.BlockPositions} block-positions over {originalBlocks} blocks x {positions} calibration positions"
            + (statistics is null ? "; every cut fitted in a pass of its own" : "; the profile pass also fed the candidates' fits");
        PruningLog.Passes(logger, passes, passDetail);
        long peak;
        using (var process = Process.GetCurrentProcess()) peak = process.PeakWorkingSet64;
        PruningLog.Done(logger, model.BlockCount, total.Elapsed.TotalSeconds, peak >> 20);
        return new PruningResult(model, originalBlocks, n, outcomes, profile, selection, selector.Name, estimator.Name,
            options, timings, peak, new CalibrationSummary(options.CalibrationSource, fingerprint,
                calibration.Sum(b => b.Count), calibrationTokens, heldOut.Sum(b => b.Count)), passes, logger);
    }

    /// <summary>The first cut's transform without a pass of its own: solved by the selector, or completed from the
    /// statistics the profile pass fed; null when neither holds it.</summary>
    private static TransformEstimate? Reuse(
        BlockCut cut, Dictionary<BlockCut, TransformEstimate> solved, CandidateStatistics? statistics,
        IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        if (solved.Remove(cut, out var done)) return done;
        using var prefit = statistics?.Take(cut);
        if (prefit is null) return null;
        var result = prefit.Complete(cancellationToken);
        progress?.Report(new PruningProgress("estimate", 1.0, cut.Start, result.Report.Tokens, Message: $"cut {cut}: fitted from the profile pass"));
        return result;
    }

    /// <summary>
    /// The candidate fits to feed during the profile pass, or null: only for selectors whose first cut is one of a known
    /// set (angular/cosine distance: every start of n blocks; replacement-aware without top-k and with the pipeline's
    /// estimator: the same; fixed cuts: the lowest one), only for estimators with fixed-size statistics, and only when
    /// they fit <see cref="PruningOptions.StatisticsBudgetBytes"/>.
    /// </summary>
    private static CandidateStatistics? PlanStatistics(
        StagedModel model, PruningOptions options, int n, IReadOnlyList<TokenBatch> fit, EstimationContext context, ILogger logger,
        bool blockMajor)
    {
        int blocks = model.BlockCount, d = model.HiddenSize;
        List<BlockCut>? candidates = options.Selector switch
        {
            AngularDistanceSelector => [.. Enumerable.Range(1, blocks - n).Select(s => new BlockCut(s, s + n))],
            ReplacementAwareSelector { TopK: null, UsesPipelineEstimator: true } => [.. Enumerable.Range(1, blocks - n).Select(s => new BlockCut(s, s + n))],
            FixedCutSelector fixedCuts when fixedCuts.Cuts.Count > 0 => [fixedCuts.Cuts.MinBy(c => c.Start)],
            _ => null,
        };
        if (candidates is null || candidates.Count == 0) return null;
        if (CandidateStatistics.BytesPerCandidate(options.Estimator, d) is not long perCandidate)
        {
            string reason = $"the {options.Estimator.Name} estimator keeps token rows";
            PruningLog.SecondPass(logger, reason);
            return null;
        }
        int longest = candidates.Max(c => c.Length);
        // X and Y rows of the fold blocks in flight: of one batch (batch-major) or of every batch (block-major).
        long batchTokens = blockMajor ? fit.Sum(b => b.TokenCount) : fit.Max(b => b.TokenCount);
        long pending = (longest + 1L) * 2 * batchTokens * d * sizeof(float);
        long need = candidates.Count * perCandidate + pending;
        if (need > options.StatisticsBudgetBytes)
        {
            string reason = $"{candidates.Count} candidates' statistics need {need >> 20} MiB, over StatisticsBudgetBytes ({options.StatisticsBudgetBytes >> 20} MiB)";
            PruningLog.SecondPass(logger, reason);
            return null;
        }
        return new CandidateStatistics(options.Estimator, candidates, d, context);
    }

    private static void ValidateSelection(List<BlockCut> cuts, int blockCount, string selector)
    {
        if (cuts.Count == 0) throw new PruningException($"The {selector} selector chose no cut.");
        for (int i = 0; i < cuts.Count; i++)
        {
            cuts[i].Validate(blockCount);
            if (i > 0 && cuts[i].Start < cuts[i - 1].End)
                throw new PruningException($"The {selector} selector chose overlapping cuts {cuts[i - 1]} and {cuts[i]}.");
        }
        if (cuts.Sum(c => c.Length) >= blockCount)
            throw new PruningException($"The {selector} selector's cuts remove every block but block 0 or more.");
    }

    private static void LogEstimate(ILogger logger, BlockCut cut, BlockCut applied, EstimatorReport r)
    {
        if (!logger.IsEnabled(LogLevel.Information)) return;
        static string F(double? v) => v?.ToString("G4", CultureInfo.InvariantCulture) ?? "n/a";
        string cutText = cut.ToString(), appliedText = applied.ToString(), residual = F(r.RelativeResidual), before = F(r.CosineBefore), after = F(r.CosineAfter);
        double seconds = r.Elapsed.TotalSeconds;
        PruningLog.Estimated(logger, cutText, appliedText, r.Estimator, r.Tokens, seconds, residual, before, after);
    }
}
