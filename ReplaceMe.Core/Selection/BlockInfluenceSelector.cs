using System.Globalization;
using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Selection;

/// <summary>
/// ShortGPT's block influence (Men et al., 2024): BI(k) = mean over every real calibration token of
/// 1 − cos(input of block k, output of block k). The BlocksPerCut × CutCount blocks with the lowest BI are removed
/// (ties: lower index first); they need not be contiguous, and block 0 is never chosen. Chosen blocks that are
/// consecutive form one cut when <see cref="SelectionRequest.MergeAdjacent"/> is set; otherwise each chosen block
/// is its own one-block cut (and gets its own transform).
/// </summary>
/// <remarks>
/// BI is measured in one pass over <see cref="SelectionRequest.Calibration"/> through the adapter (no LM head); the
/// distance profile is not used. Cosines are computed in float64; a zero state's cosine is taken as 0.
/// </remarks>
public sealed class BlockInfluenceSelector : ILayerSelector
{
    /// <summary>Creates the selector.</summary>
    public BlockInfluenceSelector() => TorchRuntime.EnsureLoaded();

    /// <inheritdoc/>
    public string Name => "bi";

    /// <inheritdoc/>
    /// <remarks><see cref="LayerSelection.Scores"/> maps every block 1..L−1 to its BI.</remarks>
    public LayerSelection ChooseCuts(SelectionRequest request, CancellationToken cancellationToken = default)
    {
        CutPlanning.ValidateRequest(request, Name);
        int total = request.BlocksPerCut * request.CutCount;
        var influence = Measure(request.Model, request.Calibration, cancellationToken);
        var scores = new Dictionary<int, double>();
        for (int k = 1; k < influence.Length; k++) scores[k] = influence[k];
        var chosen = scores.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key).Take(total).Select(kv => kv.Key).Order().ToList();
        var cuts = CutPlanning.SortAndMerge(chosen.Select(k => new BlockCut(k, k + 1)), request.MergeAdjacent);
        string chosenText = string.Join(", ", chosen.Select(k => string.Create(CultureInfo.InvariantCulture, $"{k} ({scores[k]:G4})")));
        string description = $"block influence, {total} lowest-BI blocks: {chosenText} -> {string.Join(", ", cuts)}";
        return new LayerSelection(cuts, scores, description);
    }

    /// <summary>BI of every block (index 0..L−1), averaged over every real token of <paramref name="batches"/>.</summary>
    /// <exception cref="PruningException">No real token, or a non-finite state.</exception>
    internal static double[] Measure(ITransformerAdapter model, IReadOnlyList<TokenBatch> batches, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batches);
        int blocks = model.BlockCount;
        using var noGrad = no_grad();
        using var sums = zeros([blocks], ScalarType.Float64, model.Device); // Σ (1 − cos) per block
        long tokens = 0;
        foreach (var batch in batches)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var ids = batch.InputIds.to(model.Device);                       // [B, T]
            var mask = batch.AttentionMask.to(model.Device);                 // [B, T]
            var select = ValidTokens.FlatIndex(mask, mask.device);              // [N]
            if (select.shape[0] == 0) continue;
            tokens += select.shape[0];
            using var state = model.Embed(ids, mask);
            var input = DistanceProfiler.UnitRows(ValidTokens.Rows(state.Hidden, select), "The embedding output"); // [N, d]
            for (int k = 0; k < blocks; k++)
            {
                using var blockScope = NewDisposeScope();
                model.RunBlocks(state, k, k + 1);
                var output = DistanceProfiler.UnitRows(ValidTokens.Rows(state.Hidden, select), $"The output of block {k}"); // [N, d]
                sums[k].add_(DistanceProfiler.Distance((input * output).sum(1), DistanceMetric.Cosine).sum(), HeldScalars.One);
                var previous = input;
                input = output.MoveToOuterDisposeScope();
                previous.Dispose();
            }
        }
        if (tokens == 0)
            throw new PruningException("Block influence needs calibration data: request.Calibration holds no real token.");
        return [.. sums.cpu().data<double>().ToArray().Select(v => v / tokens)];
    }
}
