using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// "How many blocks can I remove?": profiles the distances once, and for every n = 1..<see cref="SweepOptions.MaxBlocks"/>
/// lets the selector pick one cut from that same profile, fits every estimator on a fresh copy of the model, folds T
/// in, and scores the copy against the original on held-out calibration batches (perplexity and KL). Returns the table
/// and the n a target asks for.
/// </summary>
/// <remarks>
/// <para>The fit part of the calibration is what <see cref="ReplaceMePruner"/> would be given: a sweep row for n equals
/// <c>Prune</c> with the same selector, estimator, n and batches (same cut, same T, same perplexity).</para>
/// <para><b>Memory.</b> The original model stays loaded for the profile, the selection and as the reference when scoring;
/// each candidate is a fresh model from <c>loadModel</c>, pruned, scored and disposed before the next one is loaded, so at
/// most two models are in memory at once, plus one estimator's state and one chunk of logits
/// (<see cref="HealingOptions.LogitsBudgetBytes"/>'s default).</para>
/// </remarks>
public static partial class PruningSweep
{
    /// <summary>Runs the sweep.</summary>
    /// <param name="loadModel">Returns a new, unpruned copy of the model on each call (e.g. <c>() => DecoderModel.FromPretrained(dir)</c>);
    /// it is called 1 + MaxBlocks × estimators times, and every model it returns is disposed here.</param>
    /// <param name="calibration">Calibration batches; the last <see cref="SweepOptions.HeldOutFraction"/> are held out for scoring.</param>
    /// <param name="options">What to try and the target.</param>
    /// <param name="progress">Receives the profile, estimate and "sweep" records.</param>
    /// <param name="logger">Log sink.</param>
    /// <param name="cancellationToken">Checked between batches and candidates.</param>
    /// <exception cref="ArgumentException">Options out of range, or <paramref name="loadModel"/> returned the same object twice
    /// or models of different depth.</exception>
    /// <exception cref="PruningException">Fewer than two calibration batches, a selector that chose no or several cuts, or a
    /// failed fit.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static SweepResult Run(
        Func<DecoderModel> loadModel, IReadOnlyList<TokenBatch> calibration, SweepOptions options,
        IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loadModel);
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureLoaded(logger);
        logger ??= NullLogger.Instance;
        if (calibration.Count < 2)
            throw new PruningException($"A sweep scores on held-out batches: give at least 2 calibration batches (got {calibration.Count}).");
        using var original = loadModel() ?? throw new ArgumentException("loadModel returned null.", nameof(loadModel));
        options.Validate(original.BlockCount);
        var (fit, heldOut) = CalibrationBatches.Split(calibration, options.HeldOutFraction);
        var context = new EstimationContext(original.Device, options.Seed, options.MemoryBudgetBytes, logger, progress);
        var profile = new DistanceProfiler(logger).Measure(original, fit, options.MaxBlocks, options.Selector.ProfileMetric,
            options.DistanceTokens, progress, cancellationToken);

        var rows = new List<SweepRow>();
        double originalPerplexity = double.NaN;
        int total = options.MaxBlocks * options.Estimators.Count, done = 0;
        for (int n = 1; n <= options.MaxBlocks; n++)
        {
            var request = new SelectionRequest(original, profile, n, 1, true, fit, heldOut, context, options.Estimators[0]);
            var cuts = options.Selector.ChooseCuts(request, cancellationToken).Cuts;
            if (cuts.Count != 1)
                throw new PruningException($"The {options.Selector.Name} selector chose {cuts.Count} cuts for n = {n}; a sweep needs exactly one.");
            var cut = cuts[0];
            cut.Validate(original.BlockCount);
            foreach (var estimator in options.Estimators)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                using var candidate = loadModel();
                if (ReferenceEquals(candidate, original) || candidate is null)
                    throw new ArgumentException("loadModel must return a new model on every call.", nameof(loadModel));
                if (candidate.BlockCount != original.BlockCount)
                    throw new ArgumentException($"loadModel returned models of {original.BlockCount} and {candidate.BlockCount} blocks; it must return the same unpruned model.", nameof(loadModel));
                var estimate = CutFitter.Fit(candidate, cut, cut, estimator, fit, context, progress, cancellationToken);
                try { new ModelSurgeon().Apply(candidate, cut, estimate.Transform); }
                finally { estimate.Transform?.Dispose(); }
                var score = TransformHealer.Evaluate(candidate, original, heldOut, cancellationToken: cancellationToken);
                originalPerplexity = score.OriginalPerplexity;
                var row = new SweepRow(n, estimator.Name, cut, profile[cut.Start, n], score.Perplexity, score.MeanKl, clock.Elapsed.TotalSeconds);
                rows.Add(row);
                done++;
                progress?.Report(new PruningProgress("sweep", (double)done / total, cut.Start, score.Tokens, score.MeanKl,
                    $"n = {n}, {estimator.Name}: cut {cut}, held-out perplexity {score.Perplexity.ToString("F3", CultureInfo.InvariantCulture)}"));
                string cutText = cut.ToString();
                LogRow(logger, n, estimator.Name, cutText, score.Perplexity, score.MeanKl);
            }
        }
        var (recommended, reason) = Recommend(rows, originalPerplexity, options, original.BlockCount);
        return new SweepResult(originalPerplexity, rows, profile, recommended, reason);
    }

    private static (SweepRow?, string) Recommend(List<SweepRow> rows, double originalPerplexity, SweepOptions options, int blockCount)
    {
        var best = rows.GroupBy(r => r.Blocks).OrderBy(g => g.Key).Select(g => g.MinBy(r => r.Perplexity)!).ToList();
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        if (options.MaxPerplexityIncrease is { } x)
        {
            double limit = originalPerplexity * (1 + x);
            var ok = best.Where(r => r.Perplexity <= limit).ToList();
            if (ok.Count == 0)
                return (null, $"no n in 1..{options.MaxBlocks} keeps held-out perplexity within +{x:P0} of the original's {F(originalPerplexity)} (limit {F(limit)}; best n = 1: {F(best[0].Perplexity)})");
            var pick = ok.MaxBy(r => r.Blocks)!;
            return (pick, $"largest n with held-out perplexity ≤ {F(limit)} (original {F(originalPerplexity)} + {x:P0}): n = {pick.Blocks}, {pick.Estimator}, cut {pick.Cut}, perplexity {F(pick.Perplexity)}");
        }
        if (options.RemoveFraction is { } p)
        {
            int n = SweepOptions.BlocksFor(p, blockCount);
            var pick = best.Single(r => r.Blocks == n);
            return (pick, $"removing {p:P0} of {blockCount} blocks = {n}: best estimator {pick.Estimator}, cut {pick.Cut}, perplexity {F(pick.Perplexity)}");
        }
        return (null, "no target given");
    }

    [LoggerMessage(EventId = 661, Level = LogLevel.Information, Message = "Sweep n = {N}, {Estimator}: cut {Cut}, held-out perplexity {Perplexity:F3}, KL {Kl:G4}")]
    private static partial void LogRow(ILogger logger, int n, string estimator, string cut, double perplexity, double kl);
}
