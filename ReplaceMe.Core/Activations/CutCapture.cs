using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>
/// One calibration batch run up to the last block of a cut — no later block, no LM head — with the fold block
/// (<c>start − 1</c>) and the last block (<c>end − 1</c>) captured: what a cut's fit (<c>CutFitter</c>) and its mergeable
/// statistics (<c>CutStatistics</c>) read X = M_{s−1}, L_{s−1} and the target L_{e−1} from.
/// </summary>
internal static class CutCapture
{
    /// <summary>Runs blocks <c>[0, cut.End)</c> of <paramref name="model"/> on <paramref name="batch"/>.</summary>
    /// <returns>The capture (the caller disposes it) and the attention mask on the model's device (in the caller's
    /// dispose scope).</returns>
    public static (ActivationCapture Capture, Tensor Mask) Run(ITransformerAdapter model, BlockCut cut, TokenBatch batch)
    {
        var ids = batch.InputIds.to(model.Device);                  // [B, T]
        var mask = batch.AttentionMask.to(model.Device);            // [B, T]
        var capture = new ActivationCapture([cut.FoldBlock, cut.End - 1]);
        try
        {
            using var state = model.Embed(ids, mask);
            model.RunBlocks(state, 0, cut.End, capture);
        }
        catch
        {
            capture.Dispose();
            throw;
        }
        return (capture, mask);
    }
}
