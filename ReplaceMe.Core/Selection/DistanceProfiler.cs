using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// Measures, in one calibration pass, the distance of every candidate cut <c>[s, s + n)</c> for every n = 1..maxLength:
/// the mean over calibration data of the distance between the output of block <c>s − 1</c> and the output of block
/// <c>s + n − 1</c> (docs/method.md, "Selection"). States are the pre-final-norm residual stream taken straight from
/// the adapter, so a cut ending at the last block is compared with the real block output, not with the final-normed
/// state (docs/method.md, "Pre-norm targets"). Padding never enters: positions are chosen from the attention mask.
/// </summary>
/// <remarks>
/// The forward runs block by block and stops after the last block (no LM head). Only the unit-normalised states of the
/// last <c>maxLength + 1</c> block outputs are kept per batch (float64, at the selected positions), so memory is
/// <c>(maxLength + 1) × positions × d × 8</c> bytes per batch. Sums are accumulated in float64. A zero state has no
/// direction; its cosine with anything is taken as 0.
/// </remarks>
public sealed partial class DistanceProfiler
{
    private readonly ILogger _logger;

    /// <summary>Creates a profiler.</summary>
    /// <param name="logger">Receives one summary line per measurement, or null.</param>
    public DistanceProfiler(ILogger? logger = null)
    {
        TorchRuntime.EnsureLoaded();
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Measures the distance of every cut of length 1..<paramref name="maxLength"/> in one pass over <paramref name="batches"/>.</summary>
    /// <param name="model">The model (not modified).</param>
    /// <param name="batches">Calibration batches; left or right padding.</param>
    /// <param name="maxLength">Largest n to measure, 1 ≤ maxLength ≤ block count − 1.</param>
    /// <param name="metric">Angular (arccos(cos)/π, the reference code's) or cosine (1 − cos, the paper text's).</param>
    /// <param name="tokens">Last real token of each sequence (averaged over sequences) or every real token (averaged over tokens).</param>
    /// <param name="progress">Receives one "profile" report per batch.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is outside 1..block count − 1.</exception>
    /// <exception cref="PruningException">The model has fewer than 2 blocks, the data hold no real token, or a block output is not finite.</exception>
    public DistanceProfile Measure(
        ITransformerAdapter model,
        IEnumerable<TokenBatch> batches,
        int maxLength,
        DistanceMetric metric = DistanceMetric.Angular,
        DistanceTokens tokens = DistanceTokens.LastToken,
        IProgress<PruningProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batches);
        BlockMajorSettings? blockMajor = null;
        if (model is StreamedDecoderModel && batches is IReadOnlyList<TokenBatch> list)
            blockMajor = Driver(new BlockMajorSettings(HiddenStateBudgetBytes, SpillDirectory, ScalarType.Float32), tokens, list, maxLength, model.HiddenSize);
        return Measure(model, batches, maxLength, metric, tokens, null, blockMajor, progress, cancellationToken);
    }

    /// <summary>
    /// The block-major settings a profile pass can use, or null for batch-major: with every real token measured, the
    /// block-major pass keeps n + 1 float64 unit rows per token of every batch at once, so over the pass's RAM budget the
    /// profile falls back to batch-major (which keeps them for one batch) and says so in the log.
    /// </summary>
    internal BlockMajorSettings? Driver(BlockMajorSettings? wanted, DistanceTokens tokens, IReadOnlyList<TokenBatch> batches, int maxLength, int hiddenSize)
    {
        if (wanted is null || tokens != DistanceTokens.AllTokens) return wanted;
        long ring = (maxLength + 1L) * batches.Sum(b => b.TokenCount) * hiddenSize * sizeof(double);
        if (ring <= wanted.RamBudgetBytes) return wanted;
        LogBatchMajor(_logger, ring >> 20, wanted.RamBudgetBytes >> 20);
        return null;
    }

    /// <summary>
    /// For a <see cref="StreamedDecoderModel"/> (and a batch list), the pass runs block-major — each block once over every
    /// batch — with the hidden states kept in this many bytes of RAM and spilled beyond them (with every real token measured,
    /// when the per-token unit rows of every batch would exceed it, the pass runs batch-major instead). Default 1 GiB.
    /// </summary>
    public long HiddenStateBudgetBytes { get; init; } = 1L << 30;

    /// <summary>Folder of a block-major pass's spill file (unlinked at once); null uses the system's temporary folder.</summary>
    public string? SpillDirectory { get; init; }

    /// <summary>
    /// <see cref="Measure(ITransformerAdapter, IEnumerable{TokenBatch}, int, DistanceMetric, DistanceTokens, IProgress{PruningProgress}, CancellationToken)"/>,
    /// also feeding <paramref name="statistics"/> (the candidates' transform fits) from the same block-by-block walk; with
    /// <paramref name="blockMajor"/> (see <see cref="Driver"/>), the pass runs block by block over every batch (<see cref="BlockMajorPass"/>)
    /// and gives the same sums in the same order, so the same profile and candidate fits.
    /// </summary>
    internal DistanceProfile Measure(
        ITransformerAdapter model,
        IEnumerable<TokenBatch> batches,
        int maxLength,
        DistanceMetric metric,
        DistanceTokens tokens,
        CandidateStatistics? statistics,
        BlockMajorSettings? blockMajor,
        IProgress<PruningProgress>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        int blocks = model.BlockCount;
        if (blocks < 2)
            throw new PruningException($"The model has {blocks} block(s); a cut needs at least 2 (block 0 is never removed).");
        if (maxLength < 1 || maxLength >= blocks)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength,
                $"maxLength must be in 1..{blocks - 1}: a cut [s, s + n) needs s ≥ 1 and s + n ≤ {blocks} (the block count).");

        int? batchTotal = batches switch { IReadOnlyCollection<TokenBatch> c => c.Count, ICollection<TokenBatch> c => c.Count, _ => null };
        using var noGrad = no_grad();
        using var sums = zeros([maxLength, blocks - 1], ScalarType.Float64, model.Device); // [n − 1, s − 1]
        long sequences = 0, positions = 0;
        int batchIndex = 0;
        if (blockMajor is not null)
            (sequences, positions) = MeasureBlockMajor(model, [.. batches], maxLength, metric, tokens, sums, statistics, blockMajor, progress, cancellationToken);
        else foreach (var batch in batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ArgumentNullException.ThrowIfNull(batch, nameof(batches));
            var (batchSequences, batchPositions) = MeasureBatch(model, batch, maxLength, metric, tokens, sums, statistics);
            sequences += batchSequences;
            positions += batchPositions;
            batchIndex++;
            progress?.Report(new PruningProgress("profile", batchTotal is int total && total > 0 ? (double)batchIndex / total : null,
                Tokens: positions, Message: $"batch {batchIndex}"));
        }
        if (positions == 0)
            throw new PruningException("The calibration data hold no real token (every attention-mask entry is 0, or there are no batches).");

        var values = sums.cpu().data<double>().ToArray();
        var byLength = new double[maxLength][];
        for (int n = 1; n <= maxLength; n++)
        {
            byLength[n - 1] = new double[blocks - 1];
            for (int s = 1; s <= blocks - 1; s++)
                byLength[n - 1][s - 1] = s + n <= blocks ? values[(n - 1) * (blocks - 1) + s - 1] / positions : double.NaN;
        }
        LogMeasured(_logger, sequences, positions, maxLength, metric, tokens);
        return new DistanceProfile(blocks, metric, tokens, byLength, sequences);
    }

    /// <summary>The cut of length <paramref name="length"/> with the smallest distance (the lowest start on ties).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is outside 1..profile.MaxLength.</exception>
    /// <exception cref="PruningException">The profile holds no finite distance for that length.</exception>
    internal static BlockCut BestCut(DistanceProfile profile, int length)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var row = profile.ForLength(length);
        int best = -1;
        for (int i = 0; i < row.Count; i++)
            if (double.IsFinite(row[i]) && (best < 0 || row[i] < row[best])) best = i;
        if (best < 0)
            throw new PruningException($"The distance profile holds no finite distance for n = {length} (block count {profile.BlockCount}).");
        return new BlockCut(best + 1, best + 1 + length);
    }

    /// <summary>Distance from cosines: arccos(clamp(cos))/π or 1 − clamp(cos).</summary>
    internal static Tensor Distance(Tensor cosine, DistanceMetric metric)
    {
        var c = cosine.clamp(HeldScalars.MinusOne, HeldScalars.One);
        return metric == DistanceMetric.Angular ? c.acos() / HeldScalars.Pi : c.neg().add(HeldScalars.One, HeldScalars.One);
    }

    /// <summary>Unit rows in float64 (a zero row stays zero), after checking that every value is finite.</summary>
    internal static Tensor UnitRows(Tensor rows, string what)
    {
        var r = rows.to(ScalarType.Float64);                                  // [N, d]
        if (!r.isfinite().all().item<bool>())
            throw new PruningException($"{what} holds NaN or Inf at a real token position.");
        return nn.functional.normalize(r, p: 2, dim: 1, eps: 1e-300);
    }

    private static (long Sequences, long Positions) MeasureBatch(
        ITransformerAdapter model, TokenBatch batch, int maxLength, DistanceMetric metric, DistanceTokens tokens, Tensor sums,
        CandidateStatistics? statistics)
    {
        using var scope = NewDisposeScope();
        var ids = batch.InputIds.to(model.Device);                           // [B, T]
        var mask = batch.AttentionMask.to(model.Device);                     // [B, T]
        var select = tokens == DistanceTokens.LastToken
            ? ValidTokens.LastFlatIndex(mask)                      // [B']
            : ValidTokens.FlatIndex(mask, mask.device);                         // [N]
        long count = select.shape[0];
        long sequences = mask.sum(1).gt(HeldScalars.Zero).sum().item<long>();
        if (count == 0) return (0, 0);

        int blocks = model.BlockCount, window = maxLength + 1;
        var recent = new Tensor?[window];                                    // unit outputs of the last `window` blocks, ring by k % window
        using var state = model.Embed(ids, mask);
        statistics?.BeginBatch(mask);
        try
        {
            for (int k = 0; k < blocks; k++) ProfileBlock(model, state, k, select, maxLength, metric, sums, recent, statistics);
        }
        finally
        {
            statistics?.EndBatch();
            foreach (var r in recent) r?.Dispose();
        }
        return (sequences, count);
    }

    /// <summary>Block-major: every batch through block 0, then every batch through block 1, …; one ring of unit rows per batch.</summary>
    private static (long Sequences, long Positions) MeasureBlockMajor(
        ITransformerAdapter model, List<TokenBatch> all, int maxLength, DistanceMetric metric, DistanceTokens tokens, Tensor sums,
        CandidateStatistics? statistics, BlockMajorSettings settings, IProgress<PruningProgress>? progress, CancellationToken cancellationToken)
    {
        var batches = new List<TokenBatch>();
        var selects = new List<Tensor>();
        long sequences = 0, positions = 0;
        int window = maxLength + 1;
        var rings = new List<Tensor?[]>();
        try
        {
            foreach (var batch in all)
            {
                ArgumentNullException.ThrowIfNull(batch, nameof(batches));
                using var scope = NewDisposeScope();
                var mask = batch.AttentionMask.to(model.Device);                 // [B, T]
                var select = tokens == DistanceTokens.LastToken ? ValidTokens.LastFlatIndex(mask) : ValidTokens.FlatIndex(mask, mask.device);
                if (select.shape[0] == 0) continue;                              // as the batch-major loop: nothing to measure
                sequences += mask.sum(1).gt(HeldScalars.Zero).sum().item<long>();
                positions += select.shape[0];
                statistics?.BeginLane(batches.Count, mask);
                batches.Add(batch);
                selects.Add(select.DetachFromDisposeScope());
                rings.Add(new Tensor?[window]);
            }
            if (batches.Count == 0) return (0, 0);
            BlockMajorPass.Run(model, batches, model.BlockCount, k => statistics?.WantsMlpOutput(k) == true,
                (k, b, state, activations, _) =>
                {
                    statistics?.UseLane(b);
                    statistics?.AfterBlock(k, state.Hidden, activations);
                    Accumulate(state.Hidden, k, selects[b], maxLength, metric, sums, rings[b]);
                },
                0, settings, "profile", "calibration pass", progress, cancellationToken);
            return (sequences, positions);
        }
        finally
        {
            statistics?.EndBatch();
            foreach (var t in selects) t.Dispose();
            foreach (var ring in rings)
                foreach (var r in ring) r?.Dispose();
        }
    }

    private static void ProfileBlock(
        ITransformerAdapter model, DecoderState state, int k, Tensor select, int maxLength, DistanceMetric metric, Tensor sums,
        Tensor?[] recent, CandidateStatistics? statistics)
    {
        using var blockScope = NewDisposeScope();
        using var capture = statistics?.WantsMlpOutput(k) == true ? new ActivationCapture([k]) : null;
        model.RunBlocks(state, k, k + 1, capture);                       // Hidden = output of block k, [B, T, d]
        statistics?.AfterBlock(k, state.Hidden, capture?[k]);
        Accumulate(state.Hidden, k, select, maxLength, metric, sums, recent);
    }

    /// <summary>Adds the distances that end at block <paramref name="k"/> (its output <paramref name="hidden"/>) and
    /// keeps its unit rows in the batch's ring <paramref name="recent"/>.</summary>
    private static void Accumulate(Tensor hidden, int k, Tensor select, int maxLength, DistanceMetric metric, Tensor sums, Tensor?[] recent)
    {
        int window = recent.Length;
        using var scope = NewDisposeScope();
        var unit = UnitRows(ValidTokens.Rows(hidden, select), $"The output of block {k}"); // [N, d] float64
        for (int n = 1; n <= Math.Min(maxLength, k); n++)
        {
            // Cut [s, s + n) with s + n − 1 = k compares output of block k − n (= s − 1) with output of block k.
            var cosine = (unit * recent[(k - n) % window]!).sum(1);       // [N]
            sums[n - 1, k - n].add_(Distance(cosine, metric).sum(), HeldScalars.One);
        }
        recent[k % window]?.Dispose();
        recent[k % window] = unit.DetachFromDisposeScope();
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Distance profile: {Sequences} sequences, {Positions} positions averaged, n = 1..{MaxLength}, {Metric}, {Tokens}.")]
    private static partial void LogMeasured(ILogger logger, long sequences, long positions, int maxLength, DistanceMetric metric, DistanceTokens tokens);

    [LoggerMessage(EventId = 641, Level = LogLevel.Information,
        Message = "The distance profile runs batch-major: its unit rows of every token would need {NeedMiB} MiB, over the hidden-state budget of {BudgetMiB} MiB")]
    private static partial void LogBatchMajor(ILogger logger, long needMiB, long budgetMiB);
}
