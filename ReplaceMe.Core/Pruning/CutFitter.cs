using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// Streams the calibration batches through the current (possibly already pruned) model up to the last block a cut
/// needs — no later blocks, no LM head — and feeds the estimator the valid-token rows of
/// X = M_{s−1}, Y = L_{s−1} − M_{s−1} and target = L_{e−1} (pre-final-norm).
/// </summary>
internal static class CutFitter
{
    // cut: in the model's current indices; original: the same cut in the original model's indices (for messages).
    public static TransformEstimate Fit(
        ITransformerAdapter model, BlockCut cut, BlockCut original, ITransformEstimator estimator,
        IReadOnlyList<TokenBatch> batches, EstimationContext context,
        IProgress<PruningProgress>? progress, CancellationToken ct) =>
        Fit(model, cut, original, estimator, batches, context, blockMajor: null, progress, ct);

    /// <summary>As above; with <paramref name="blockMajor"/> the pass runs block by block over every batch
    /// (<see cref="BlockMajorPass"/>) and feeds the estimator the same rows in the same batch order.</summary>
    public static TransformEstimate Fit(
        ITransformerAdapter model, BlockCut cut, BlockCut original, ITransformEstimator estimator,
        IReadOnlyList<TokenBatch> batches, EstimationContext context, BlockMajorSettings? blockMajor,
        IProgress<PruningProgress>? progress, CancellationToken ct)
    {
        cut.Validate(model.BlockCount);
        int fold = cut.FoldBlock, last = cut.End - 1;
        using var fit = estimator.Begin(cut, model.HiddenSize, context);
        if (blockMajor is not null) return FitBlockMajor(model, cut, original, fit, batches, blockMajor, progress, ct);
        long tokens = 0;
        for (int b = 0; b < batches.Count; b++)
        {
            ct.ThrowIfCancellationRequested();
            using (var scope = NewDisposeScope())
            {
                var (capture, mask) = CutCapture.Run(model, cut, batches[b]);
                using var captured = capture;
                var x = ValidTokens.Gather(capture[fold].MlpOutput, mask);           // [N, d]
                var y = ValidTokens.Gather(capture[fold].Output, mask).sub_(x);      // [N, d]
                var target = ValidTokens.Gather(capture[last].Output, mask);         // [N, d]
                // The fit checks shapes and finiteness (once per batch); add where the rows came from.
                try { fit.Accumulate(x, y, target); }
                catch (PruningException ex)
                {
                    throw new PruningException(
                        $"{ex.Message} (fitting cut {original} in original block indices, calibration batch {b + 1} of {batches.Count}; " +
                        "check the model's dtype, float16 overflows, and its weights)", ex);
                }
                tokens += x.shape[0];
            }
            progress?.Report(new PruningProgress("estimate", (b + 1.0) / batches.Count, original.Start, tokens,
                Message: $"cut {original}: batch {b + 1}/{batches.Count}"));
        }
        ct.ThrowIfCancellationRequested();
        return fit.Complete(ct);
    }

    private static TransformEstimate FitBlockMajor(
        ITransformerAdapter model, BlockCut cut, BlockCut original, ITransformFit fit, IReadOnlyList<TokenBatch> batches,
        BlockMajorSettings settings, IProgress<PruningProgress>? progress, CancellationToken ct)
    {
        int fold = cut.FoldBlock, last = cut.End - 1;
        // The fold block's rows wait in the pass's store (RAM budget, then the spill file) until the last block: key −(2b + 1)
        // for X and −(2b + 2) for Y of batch b.
        long tokens = 0, rowBytes = batches.Sum(b => b.TokenCount) * model.HiddenSize * sizeof(float) * 2;
        BlockMajorPass.Run(model, batches, cut.End, k => k == fold, (k, b, state, activations, store) =>
        {
            using var scope = NewDisposeScope();
            var mask = batches[b].AttentionMask.to(model.Device);                // [B, T]
            if (k == fold)
            {
                var x = ValidTokens.Gather(activations!.MlpOutput, mask);        // [N, d]
                var y = ValidTokens.Gather(activations.Output, mask).sub_(x);   // [N, d]
                store.Put(-(2 * b + 1), x);
                store.Put(-(2 * b + 2), y);
            }
            if (k != last) return;
            using var px = store.Take(-(2 * b + 1));
            using var py = store.Take(-(2 * b + 2));
            // The batch-major loop takes the target from a float32 capture of the output: the same values.
            var target = ValidTokens.Gather(state.Hidden.to(ScalarType.Float32), mask); // [N, d]
            try { fit.Accumulate(px, py, target); }
            catch (PruningException ex)
            {
                throw new PruningException(
                    $"{ex.Message} (fitting cut {original} in original block indices, calibration batch {b + 1} of {batches.Count}; " +
                    "check the model's dtype, float16 overflows, and its weights)", ex);
            }
            tokens += px.shape[0];
        }, rowBytes, settings, "estimate", $"fitting cut {original}", progress, ct);
        progress?.Report(new PruningProgress("estimate", 1.0, original.Start, tokens, Message: $"cut {original}: {batches.Count} batches"));
        ct.ThrowIfCancellationRequested();
        return fit.Complete(ct);
    }
}
