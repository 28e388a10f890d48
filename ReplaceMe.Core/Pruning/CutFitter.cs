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
        IProgress<PruningProgress>? progress, CancellationToken ct)
    {
        cut.Validate(model.BlockCount);
        int fold = cut.FoldBlock, last = cut.End - 1;
        using var fit = estimator.Begin(cut, model.HiddenSize, context);
        long tokens = 0;
        for (int b = 0; b < batches.Count; b++)
        {
            ct.ThrowIfCancellationRequested();
            using (var scope = NewDisposeScope())
            {
                var batch = batches[b];
                var ids = batch.InputIds.to(model.Device);           // [B, T]
                var mask = batch.AttentionMask.to(model.Device);     // [B, T]
                using var capture = new ActivationCapture([fold, last]);
                using (var state = model.Embed(ids, mask))
                    model.RunBlocks(state, 0, cut.End, capture);
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
}
